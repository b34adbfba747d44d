# Variable values for production: dockplan validate -var-file prod.hcl
# (relative to the working directory, which -chdir changes).
environment = "prod"
memory_mib  = 64
features    = ["search", "cart", "recommendations"]
extra_env = {
  CACHE_TTL = "300"
}

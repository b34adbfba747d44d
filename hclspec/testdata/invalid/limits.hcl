# want: Invalid ulimit @ 10:17
# want: Invalid ulimit @ 10:17
# want: Invalid sysctl @ 11:17
# want: Invalid IP address @ 12:17
# want: Duplicate host entry @ 20:17
project = "shop"
container "web" {
  image = "shop/web:1"
  # bad name, soft above hard; a good one between them
  ulimits     = { nofiles = 10, nproc = "10:5", stack = -1 }
  sysctls     = { "net core" = "1" }
  extra_hosts = { "db.internal" = "10.0.0.300" }
}
container "api" {
  image = "shop/api:1"
  ports = ["8080"]
}
container "front" {
  image       = "shop/web:1"
  extra_hosts = { API = "10.0.0.5" }
  link "api" {}
}

# Variables, locals, functions and sensitive values.
#
# Every variable has a default so that `dockplan validate` works with no
# flags. Override them with -var, -var-file or DOCKPLAN_VAR_<name>:
#   dockplan -chdir=examples/variables validate -var environment=prod
#   dockplan -chdir=examples/variables validate -var-file prod.hcl
#   DOCKPLAN_VAR_api_token=... dockplan -chdir=examples/variables validate

project = "variables-demo"

variable "environment" {
  type        = string
  default     = "staging"
  description = "Which environment this is: dev, staging or prod."
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "replicas" {
  type        = map(number)
  default     = { dev = 1, staging = 2, prod = 3 }
  description = "Instances per environment."
  validation {
    condition     = min(values(var.replicas)...) >= 1 && max(values(var.replicas)...) <= 10
    error_message = "Every environment runs 1 to 10 instances."
  }
}

variable "image_tag" {
  type        = string
  default     = null # null: coalesce() below falls back to "dev"
  description = "Tag of dockplan-testapp to run."
}

variable "memory_mib" {
  type    = number
  default = 48
  validation {
    condition     = var.memory_mib >= 16 && floor(var.memory_mib) == var.memory_mib
    error_message = "memory_mib must be a whole number of MiB, at least 16."
  }
}

variable "debug" {
  type    = bool
  default = false
}

variable "features" {
  type    = list(string)
  default = ["search", "cart"]
}

variable "extra_env" {
  type        = map(string)
  default     = {}
  description = "More environment variables for every instance."
}

variable "owner" {
  type = object({
    team  = string
    email = string
  })
  default = {
    team  = "platform"
    email = "platform@example.com"
  }
  validation {
    condition     = can(regex("^[^@ ]+@[^@ ]+$", var.owner.email))
    error_message = "owner.email must be an e-mail address."
  }
}

# A real secret has no default: leave it out and dockplan stops with "No value
# for required variable" until -var, a -var-file or DOCKPLAN_VAR_api_token
# gives one. This default only lets the example validate with no flags.
variable "api_token" {
  type        = string
  default     = "dev-only-token"
  sensitive   = true
  description = "Token the app sends upstream; redacted in every output."
  validation {
    condition     = strlen(var.api_token) >= 8
    error_message = "api_token must be at least 8 characters."
  }
}

locals {
  replicas = lookup(var.replicas, var.environment, 1)
  image    = format("dockplan-testapp:%s", coalesce(var.image_tag, "dev"))
  common_env = merge(
    {
      ENVIRONMENT = var.environment
      LOG_LEVEL   = var.debug ? "debug" : "info"
      FEATURES    = join(",", sort(var.features))
      MOTD        = trimspace(file("motd.txt")) # relative to this folder
    },
    var.extra_env,
  )
  settings = jsonencode({
    environment = var.environment
    replicas    = local.replicas
    features    = var.features
  })
  auth_header = "Bearer ${var.api_token}" # sensitive, because var.api_token is
}

container "app" {
  image        = local.image
  image_source = "local"
  count        = local.replicas
  ports        = ["8080"]
  env = merge(local.common_env, {
    INSTANCE      = format("%s-%02d", var.environment, count.index)
    SETTINGS      = local.settings
    SETTINGS_B64  = base64encode(local.settings)
    AUTHORIZATION = local.auth_header # sensitive values are allowed in env
  })
  labels = {
    "com.example.team"  = var.owner.team
    "com.example.owner" = var.owner.email
  }

  resources {
    cpu    = var.debug ? 0.5 : 0.25
    memory = "${var.memory_mib}MiB"
  }

  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = var.debug ? "2s" : "10s"
  }
}

output "settings" {
  description = "The settings every instance gets, as JSON."
  value       = local.settings
}

output "authorization" {
  description = "Derived from a sensitive variable, so it must be marked sensitive."
  value       = local.auth_header
  sensitive   = true
}

output "token_length" {
  description = "nonsensitive() shows a value the author knows is safe."
  value       = nonsensitive(strlen(var.api_token))
}

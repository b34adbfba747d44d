# db + api x api_replicas + web x 2: the changes a pull request usually
# makes here are a new api_image tag or another api_replicas.

variable "api_image" {
  type        = string
  default     = "dockplan-testapp:dev"
  description = "Image of the api tier; a release bumps its tag."
}

variable "api_replicas" {
  type        = number
  default     = 3
  description = "How many api instances, at most one per host."
  validation {
    condition     = var.api_replicas >= 1 && var.api_replicas <= 3
    error_message = "api_replicas must be 1 to 3: at most one api instance runs on each of the three hosts."
  }
}

container "db" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["5432:5432"]
  restart      = "always"
  env = {
    PORT = "5432"
    ROLE = "db"
  }

  resources {
    cpu    = 0.5
    memory = "256MiB"
  }

  placement {
    labels = { disk = "ssd" }
  }

  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "2s"
    retries  = 5
  }
}

container "api" {
  image        = var.api_image
  image_source = "local"
  count        = var.api_replicas
  ports        = ["8080"] # Docker picks the host port
  restart      = "on-failure:5"
  env = {
    ROLE     = "api"
    INSTANCE = "api-${count.index}"
  }

  link "db" {} # DB_HOST, DB_PORT, DB_ADDR; created after db is healthy

  resources {
    cpu    = 0.25
    memory = "64MiB"
  }

  placement {
    distinct_hosts = true
  }
}

container "web" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 2
  ports        = ["18081:8080"]
  restart      = "unless-stopped"

  link "api" {
    alias = "backend"
    port  = 8080
  }

  resources {
    cpu    = 0.25
    memory = "32MiB"
  }

  placement {
    labels         = { tier = "edge" }
    distinct_hosts = true
  }
}

project = "shop"                        # required; lowercase letters, digits, dashes

variable "api_replicas" {
  type        = number
  default     = 3
  description = "How many API instances"
  validation {
    condition     = var.api_replicas > 0
    error_message = "Need at least one API instance."
  }
}
variable "db_password" {
  type      = string
  sensitive = true                      # redacted in every output, forever after
}
locals { tag = "1.4.2" }

host "node1" {
  address        = "ssh://deploy@10.0.0.11"   # ssh://, tcp:// (TLS), unix://
  public_address = "10.0.0.11"                # where other hosts reach its published ports; default: host part of address
  labels         = { zone = "a", disk = "ssd" }
  capacity {                                  # optional: overrides what the engine reports
    cpu    = 4
    memory = "8GiB"
  }
  reserve {                                   # optional: kept free for the OS
    cpu    = 0.5
    memory = "1GiB"
  }
}
host "node2" {
  address = "tcp://10.0.0.12:2376"
  tls {
    ca_file   = "ca.pem"
    cert_file = "cert.pem"
    key_file  = "key.pem"
  }
}

container "db" {
  image   = "postgres:16"
  env     = { POSTGRES_PASSWORD = var.db_password }
  ports   = ["5432:5432"]               # "HOST:CONTAINER", "CONTAINER" (Docker picks the host port), optional "/udp"
  volumes = ["pgdata:/var/lib/postgresql/data", "/srv/conf:/etc/conf:ro"]
  resources {
    cpu    = 1                          # cores, fractions allowed
    memory = "1GiB"                     # bytes with units
  }
  placement {
    hosts          = ["node1", "node2"] # allow-list; one name pins
    labels         = { disk = "ssd" }   # every label must match the host's labels
    strategy       = "spread"           # default; or "binpack"
    distinct_hosts = true               # at most one instance of this container per host
  }
  health {
    command      = ["CMD", "pg_isready"]
    interval     = "5s"
    timeout      = "3s"
    retries      = 5
    start_period = "10s"
  }
  restart      = "unless-stopped"       # no | always | unless-stopped | on-failure[:N]
  command      = ["postgres", "-c", "max_connections=200"]
}

container "api" {
  image = "shop/api:${local.tag}"
  count = var.api_replicas              # instances api[0] .. api[2]
  resources {
    cpu    = 0.5
    memory = "256MiB"
  }
  ports = ["8080"]
  link "db" {}                          # DB_HOST, DB_PORT, DB_ADDR (host:port) env, /etc/hosts entry "db"; ordered after db
  env = {
    DATABASE_URL = "postgres://app@${container.db.address}/shop"  # known once db is placed and started
  }
}

container "web" {
  image      = "shop/web:${local.tag}"
  count      = 2
  ports      = ["80:8080"]
  link "api" {                          # BACKEND_ADDRS=h1:p1,h2:p2,... for several instances
    alias = "backend"
    port  = 8080
  }
  depends_on = [container.api]
}

output "web_urls" { value = [for w in container.web : "http://${w.address}"] }

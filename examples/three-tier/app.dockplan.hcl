# db + api x3 + web x2. Each tier is the test workload (an HTTP server with
# /healthz) standing in for a database, an API and a web front end.

container "db" {
  image        = local.image
  image_source = "local" # copied from the engine of the machine running dockplan
  hostname     = "db"
  ports        = ["5432:5432"]
  volumes      = ["three-tier-db:/data"] # a named volume, kept across re-creates
  restart      = "always"
  stop_timeout = "30s"
  env = {
    PORT = "5432" # testapp listens (and -healthcheck checks) on $PORT
    ROLE = "db"
  }
  labels = {
    "com.example.tier" = "data"
  }

  resources {
    cpu    = 0.5
    memory = "128MiB"
  }

  placement {
    hosts  = ["node1"] # one name pins the container to that host
    labels = { disk = "ssd" }
  }

  health {
    command      = ["CMD", "/testapp", "-healthcheck"]
    interval     = "5s"
    timeout      = "2s"
    retries      = 5
    start_period = "10s"
  }
}

container "api" {
  image        = local.image
  image_source = "local"
  count        = var.api_replicas # instances api[0] .. api[2]
  ports        = ["8080"]         # Docker picks the host port
  restart      = "on-failure:5"
  user         = "65534:65534"
  command      = ["-hold", "8MiB"]
  env = {
    ROLE         = "api"
    INSTANCE     = "api-${count.index}"
    DATABASE_URL = "postgres://app@${container.db.address}/shop" # known once db is placed
  }
  labels = {
    "com.example.tier" = "app"
  }

  link "db" {} # DB_HOST, DB_PORT, DB_ADDR; ordered after db

  resources {
    cpu    = 0.25
    memory = "64MiB"
  }

  placement {
    strategy       = "spread"
    distinct_hosts = true # at most one api instance per host
  }

  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "10s"
    retries  = 3
  }
}

container "web" {
  image        = local.image
  image_source = "local"
  count        = var.web_replicas
  ports        = ["80:8080"]
  restart      = "unless-stopped"
  env = {
    ROLE = "web"
  }
  labels = {
    "com.example.tier" = "web"
  }

  link "api" { # BACKEND_* variables listing every api instance
    alias = "backend"
    port  = 8080
  }

  depends_on = [container.api] # already implied by the link; shown for its syntax

  resources {
    cpu    = 0.25
    memory = "32MiB"
  }

  placement {
    labels         = { tier = "edge" }
    strategy       = "binpack"
    distinct_hosts = true # host port 80 can be taken once per host
  }

  health {
    command = ["CMD", "/testapp", "-healthcheck"]
  }
}

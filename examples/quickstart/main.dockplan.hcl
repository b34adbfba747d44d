# Quickstart: no host block, so both containers run on the implicit host
# "local": the engine DOCKER_HOST (or DOCKER_CONTEXT, or the default socket
# /var/run/docker.sock) names.
#
# The image is the project's test workload, built FROM scratch on this
# machine; image_source = "local" copies it from the local engine instead of
# pulling it from a registry.

project = "quickstart"

container "hello" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["18080:8080"] # http://localhost:18080/
  restart      = "unless-stopped"
  env = {
    GREETING = "hello from dockplan"
  }

  # Least privilege: the program writes nothing and binds a port above 1024.
  read_only = true
  cap_drop  = ["ALL"]
  init      = true

  logging {
    driver  = "json-file"
    options = { max-size = "10m", max-file = "3" }
  }

  resources {
    cpu    = 0.25
    memory = "32MiB"
  }

  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "5s"
    timeout  = "2s"
    retries  = 3
  }
}

container "worker" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 2        # instances worker[0] and worker[1]
  ports        = ["8080"] # Docker picks each instance's host port
  env = {
    WORKER_INDEX = count.index
  }

  resources {
    cpu    = 0.1
    memory = "32MiB"
  }
}

output "hello_url" {
  description = "Where hello answers on this machine."
  value       = "http://localhost:${container.hello.ports["8080"]}/"
}

output "worker_ports" {
  description = "The host ports Docker picked (known after apply)."
  value       = [for w in container.worker : w.ports["8080"]]
}

# want: Invalid CPU amount @ 8:14
# want: Invalid memory size @ 9:14
# want: Invalid duration @ 13:16
project = "shop"
container "db" {
  image = "postgres:16"
  resources {
    cpu    = -1
    memory = "12 parsecs"
  }
  health {
    command  = ["CMD", "true"]
    interval = "5 seconds"
  }
}

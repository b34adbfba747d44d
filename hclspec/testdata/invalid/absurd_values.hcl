# want: Value out of range @ 7:11
# want: Invalid CPU amount @ 9:14
# want: Invalid memory size @ 10:14
project = "shop"
container "db" {
  image = "postgres:16"
  count = 100000
  resources {
    cpu    = 5000
    memory = "900TiB"
  }
}

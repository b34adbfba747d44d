# want: Container values are not allowed here @ 9:11
project = "shop"
container "db" {
  image = "postgres:16"
  ports = ["5432"]
}
container "web" {
  image = "nginx:1"
  count = container.db.index
}

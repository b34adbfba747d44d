# want: Value out of range @ 5:11
project = "shop"
container "db" {
  image = "postgres:16"
  count = -1
}

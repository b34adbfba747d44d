# want: Link target publishes no port @ 8:3
project = "shop"
container "db" {
  image = "postgres:16"
}
container "web" {
  image = "nginx:1"
  link "db" {}
}

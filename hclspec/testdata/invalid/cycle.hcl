# want: Dependency cycle @ 4:1
project = "shop"

container "a" {
  image = "x:1"
  ports = ["80"]
  link "b" {}
}
container "b" {
  image = "x:1"
  ports = ["80"]
  env   = { A = container.c.address }
}
container "c" {
  image      = "x:1"
  depends_on = [container.a]
}

# want: Reference to undeclared container @ 11:8
# want: Reference to undeclared container @ 12:17
project = "shop"

container "db" {
  image = "postgres:16"
  ports = ["5432"]
}
container "api" {
  image = "shop/api:1"
  link "bd" {}
  depends_on = [container.dbb]
}

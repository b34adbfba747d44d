# want: Self-referential container @ 5:8
project = "shop"
container "web" {
  image = "nginx:1"
  link "web" {}
}

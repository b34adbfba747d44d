# want: Invalid image reference @ 4:11
project = "shop"
container "web" {
  image = "Shop/API:1"
}

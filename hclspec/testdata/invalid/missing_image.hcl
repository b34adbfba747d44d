# want: Missing required argument @ 4:17
project = "shop"

container "web" {
  count = 2
}

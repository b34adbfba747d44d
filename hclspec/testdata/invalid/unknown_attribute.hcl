# want: Missing required argument @ 5:17
# want: Unsupported argument @ 6:3
project = "shop"

container "web" {
  imgae = "nginx:1"
}

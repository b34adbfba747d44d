# want: Unsupported block type @ 4:1
project = "shop"

contaner "web" {
  image = "nginx:1"
}

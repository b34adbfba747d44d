# want: Argument or block definition required @ 4:3
project = "shop"
container "web" {
  = "nginx"
}

# want: Incorrect attribute value type @ 7:13
# want: Incorrect attribute value type @ 12:14
project = "shop"

container "web" {
  image   = "nginx:1"
  ports   = "80:8080"
}

host "h1" {
  address  = "unix:///var/run/docker.sock"
  insecure = "maybe"
}

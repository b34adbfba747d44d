# want: Warning Placement label no host declares @ 10:14
# want: Unsupported argument @ 12:3
project = "shop"
host "a" {
  address = "unix:///var/run/docker.sock"
}
container "web" {
  image = "nginx:1"
  placement {
    labels = { gpu = "yes" }
  }
  imagex = "x"
}

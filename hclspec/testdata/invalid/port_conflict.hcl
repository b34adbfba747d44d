# want: Duplicate host port @ 12:11
project = "shop"
host "a" {
  address = "unix:///var/run/docker.sock"
}
container "web" {
  image = "nginx:1"
  ports = ["80:8080"]
}
container "proxy" {
  image = "nginx:1"
  ports = ["80:80"]
}

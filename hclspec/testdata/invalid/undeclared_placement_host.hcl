# want: Reference to undeclared host @ 9:13
project = "shop"
host "node1" {
  address = "unix:///var/run/docker.sock"
}
container "web" {
  image = "nginx:1"
  placement {
    hosts = ["node2"]
  }
}

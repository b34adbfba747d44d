# want: Invalid host address @ 4:13
project = "shop"
host "node1" {
  address = "tcp://10.0.0.1:2375"
}

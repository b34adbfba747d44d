# Three Docker hosts. Plain tcp:// to an address that is not loopback needs
# insecure = true: the lab's engines sit on a private namespace network. On a
# real network use ssh:// or a tls block instead.

host "node1" {
  address  = var.node1_address
  insecure = true
  labels = {
    zone = "a"
    disk = "ssd"
    tier = "data"
  }

  reserve { # kept free for the operating system
    cpu    = 0.25
    memory = "256MiB"
  }
}

host "node2" {
  address  = var.node2_address
  insecure = true
  labels = {
    zone = "b"
    disk = "ssd"
    tier = "edge"
  }
}

host "node3" {
  address  = var.node3_address
  insecure = true
  labels = {
    zone = "c"
    disk = "hdd"
    tier = "edge"
  }

  capacity { # overrides what the engine reports
    cpu    = 2
    memory = "2GiB"
  }
}

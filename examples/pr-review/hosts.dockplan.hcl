# The hosts of the pr-review example. Every host block declares capacity:
# `dockplan plan -refresh=false` contacts no host, so the capacity block is
# the only figure placement has for a host; one without it can keep what
# the state records there but receives no new instance.
#
# The default addresses are the test lab's engines (go run ./lab up 3), so
# the example also applies there; the pull-request job never dials them.

project = "pr-review"

variable "node1_address" {
  type        = string
  default     = "tcp://10.213.0.11:2375"
  description = "Docker endpoint of node1 (holds the database)."
}

variable "node2_address" {
  type        = string
  default     = "tcp://10.213.0.12:2375"
  description = "Docker endpoint of node2."
}

variable "node3_address" {
  type        = string
  default     = "tcp://10.213.0.13:2375"
  description = "Docker endpoint of node3."
}

host "node1" {
  address  = var.node1_address
  insecure = true
  labels = {
    disk = "ssd"
  }

  capacity { # what the host may give containers, declared for -refresh=false
    cpu    = 2
    memory = "2GiB"
  }

  reserve {
    cpu    = 0.25
    memory = "256MiB"
  }
}

host "node2" {
  address  = var.node2_address
  insecure = true
  labels = {
    tier = "edge"
  }

  capacity {
    cpu    = 2
    memory = "2GiB"
  }
}

host "node3" {
  address  = var.node3_address
  insecure = true
  labels = {
    tier = "edge"
  }

  capacity {
    cpu    = 1
    memory = "1GiB"
  }
}

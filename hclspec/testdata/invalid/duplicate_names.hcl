# want: Duplicate container @ 8:11
# want: Duplicate host @ 13:6
# want: Duplicate variable @ 17:10
project = "shop"

container "web" { image = "nginx:1" }

container "web" { image = "nginx:2" }

host "a" {
  address = "unix:///var/run/docker.sock"
}
host "a" {
  address = "unix:///var/run/docker.sock"
}
variable "x" { default = 1 }
variable "x" { default = 2 }

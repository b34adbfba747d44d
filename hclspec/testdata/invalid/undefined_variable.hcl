# want: Reference to undeclared input variable @ 6:11
project = "shop"
variable "replicas" { default = 2 }
container "web" {
  image = "nginx:1"
  count = var.replica
}

# want: Sensitive value not allowed @ 8:11
project = "shop"
variable "tag" {
  sensitive = true
  default   = "1"
}
container "web" {
  image = "nginx:${var.tag}"
}

# want: Output refers to sensitive values @ 7:23
project = "shop"
variable "pw" {
  sensitive = true
  default   = "x"
}
output "pw" { value = var.pw }

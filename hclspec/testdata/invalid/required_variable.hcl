# want: No value for required variable @ 3:1
project = "shop"
variable "password" {
  type      = string
  sensitive = true
}

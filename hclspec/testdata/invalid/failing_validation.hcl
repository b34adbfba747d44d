# want: Invalid value for variable @ 6:21
project = "shop"
variable "replicas" {
  default = 0
  validation {
    condition     = var.replicas > 0
    error_message = "Need at least one replica."
  }
}

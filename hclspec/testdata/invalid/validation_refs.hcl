# want: Invalid reference in variable validation @ 7:29
project = "p"
locals { min = 1 }
variable "n" {
  default = 2
  validation {
    condition     = var.n > local.min
    error_message = "Too small."
  }
}

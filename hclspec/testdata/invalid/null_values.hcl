# want: Missing value @ 8:13
# want: Missing value @ 9:13
# want: Missing value @ 10:22
project = "p"
variable "n" { default = null }
container "db" {
  image   = "nginx"
  env     = { N = var.n }
  command = ["a", null]
  health { command = [null] }
}

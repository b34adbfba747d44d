# want: Cycle in local values @ 4:3
project = "shop"
locals {
  a = local.b
  b = local.a
}

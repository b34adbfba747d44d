container "b" {
  image = "x:1"
  count = -3
  env   = { A = var.nope, B = local.nope }
}

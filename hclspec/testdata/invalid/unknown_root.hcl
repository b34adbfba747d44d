# want: Unknown variable @ 5:17
project = "shop"
container "web" {
  image = "nginx:1"
  env   = { A = vars.x }
}

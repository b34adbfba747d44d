project = "p"
container "a" {
  image = "x:1"
  ports = ["nope", "80/sctp"]
  volumes = ["rel:rel"]
}

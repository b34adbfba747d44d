# want: Link target publishes no port @ 12:3
# want: Link port not published @ 17:3
# want: Invalid output name @ 21:8
project = "p"
container "dns" {
  image = "coredns:1"
  ports = ["53/udp"]
}
container "app" {
  image = "app:1"
  ports = ["80"]
  link "dns" {}
}
container "app2" {
  image = "app:1"
  ports = ["80"]
  link "app" {
    port = 81
  }
}
output "Bad Name" { value = 1 }

# want: Invalid port @ 7:13
# want: Invalid volume @ 8:13
# want: Invalid restart policy @ 9:13
project = "shop"
container "db" {
  image   = "postgres:16"
  ports   = ["80:80:80:80"]
  volumes = ["data:relative/path"]
  restart = "sometimes"
}

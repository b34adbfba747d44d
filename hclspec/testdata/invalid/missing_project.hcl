# want: Missing project @ 1:1
container "web" {
  image = "nginx:1"
}

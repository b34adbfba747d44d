# want: Invalid host address @ 4:13
project = "shop"
host "a" {
  address = "http://example:2375"
}

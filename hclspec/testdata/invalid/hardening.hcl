# want: Invalid capability @ 10:15
# want: Duplicate capability @ 11:15
# want: Invalid tmpfs @ 12:15
# want: Incorrect attribute value type @ 14:15
# want: Invalid tmpfs @ 18:11
# want: Duplicate mount target @ 23:13
project = "shop"
container "web" {
  image     = "shop/web:1"
  cap_add   = ["NET_ADMN"]
  cap_drop  = ["ALL", "cap_all"]
  tmpfs     = ["tmp"]
  volumes   = ["/srv:/data"]
  read_only = "yes"
}
container "api" {
  image = "shop/api:1"
  tmpfs = ["/run:size=64m,exec,bogus"]
}
container "db" {
  image   = "postgres:16"
  volumes = ["data:/var/lib/postgresql"]
  tmpfs   = ["/var/lib/postgresql"]
}

# want: Duplicate health block @ 12:3
# want: Invalid log driver @ 16:14
# want: Invalid memory size @ 18:14
# want: Missing required argument @ 22:11
# want: Duplicate logging block @ 29:3
project = "shop"
container "web" {
  image = "shop/web:1"
  health {
    command = ["CMD", "/web", "-check"]
  }
  health {
    command = ["CMD", "/web", "-check2"]
  }
  logging {
    driver = "json file"
  }
  shm_size = "lots"
}
container "api" {
  image = "shop/api:1"
  logging {
    options = { max-size = "10m" }
  }
}
container "db" {
  image = "postgres:16"
  logging { driver = "local" }
  logging { driver = "journald" }
}

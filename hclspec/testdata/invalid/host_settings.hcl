# want: Empty address @ 6:13
# want: Conflicting host settings @ 9:3
# want: Invalid host address @ 17:14
project = "p"
host "a" {
  address = ""
}
host "b" {
  context = "prod"
  tls {
    ca_file   = "ca.pem"
    cert_file = "cert.pem"
    key_file  = "key.pem"
  }
}
host "c" {
  address  = "ssh://root@10.0.0.3"
  insecure = true
}

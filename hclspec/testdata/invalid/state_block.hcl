# want: Invalid etcd endpoint @ 7:15
# want: Credentials do not belong in the configuration @ 5:1
# want: Duplicate state block @ 11:1
project = "p"
state {
  backend   = "etcd"
  endpoints = ["tcp://10.0.0.5:2379"]
  prefix    = "dockplan/p"
  password  = "canary-s3cret"
}
state {
  backend = "fil"
}

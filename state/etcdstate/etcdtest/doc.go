// Package etcdtest starts real etcd clusters for tests of the etcd state
// backend (state/etcdstate): Debian's etcd binary (package etcd-server),
// one process per member on free loopback ports, data directories under
// the test's temporary directory. Members can be killed with SIGKILL by
// PID and restarted on the same ports and data, which is how the tests
// imitate a crashed member or a lost quorum; an in-process (embedded)
// etcd cannot imitate that.
//
// A missing etcd binary skips the test, and fails it under CI=true
// (lab/install-deps.sh installs etcd-server). Everything a cluster started
// is killed in t.Cleanup.
//
// It imports testing and is meant for _test.go files only. It must not
// use the etcd Go client: it reads member health over plain HTTP, so that
// the harness does not depend on the code it tests.
package etcdtest

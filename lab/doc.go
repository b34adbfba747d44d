// Command lab runs the dockplan test lab: N extra Docker engines ("hosts")
// on this machine, each a dockerd in its own network namespace with its own
// address, joined by a bridge in a "switch" namespace, plus a local image
// registry (Debian's docker-registry) and the project's test image.
//
//	go run ./lab up 3        # start (idempotent), load the test image
//	go run ./lab env         # hosts as shell variables (-json: the state)
//	go run ./lab partition host2 / heal host2
//	go run ./lab kill [-power] host3 / revive host3
//	go run ./lab down        # remove everything the lab made
//
// It needs root. It owns the lab's setup and teardown and ends only the
// processes that belong to the lab (verified by pid file, namespace or
// cgroup); it never touches the root namespace's firewall or the machine's
// default engine beyond reading images from it. Tests use the lab through
// package labenv; docs/lab.md is the operator's guide.
package main

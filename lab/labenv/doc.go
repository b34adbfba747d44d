// Package labenv lets tests use the dockplan test lab: several real Docker
// hosts on one machine, started by `go run ./lab up 3` (see docs/lab.md).
//
// It owns reading the lab's state file, the hosts' addresses as HCL-ready
// values, the project's test image (EnsureTestImage builds it into any
// engine that lacks it), and the lab's faults (Partition, Heal, Kill,
// Revive), so that integration tests need not shell out to the lab command.
//
// It must not set the lab up or tear it down (the lab command does that),
// and it talks to Docker with plain HTTP over the engine's socket rather than
// the Docker Go client, so that importing it stays light.
package labenv

// Package probetest holds the integration tests of package probe and of
// `dockplan hosts` against the test lab (`go run ./lab up 3`, docs/lab.md):
// capacity and allocations of real engines, managed containers found by
// label, a partitioned host, ssh:// and TLS endpoints, bad endpoints, and
// the probe benchmark behind docs/benchmarks.md. Under CI=true a missing lab
// fails them; otherwise they skip.
//
// It has no code of its own. The CLI tests run the test binary itself as
// dockplan (see TestMain), so they see the real exit code and streams.
package probetest

//go:build !unix

package planner_test

import "time"

// cpuTime is the CPU time the process has used; ok is false where it
// cannot be read, as here.
func cpuTime() (d time.Duration, ok bool) { return 0, false }

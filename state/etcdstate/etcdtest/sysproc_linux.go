package etcdtest

import "syscall"

// sysProcAttr makes the kernel kill a member when the test process dies
// (a test binary killed by -timeout runs no cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

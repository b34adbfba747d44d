//go:build !linux

package etcdtest

import "syscall"

// sysProcAttr is empty where there is no parent-death signal: members of a
// killed test process are left running.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

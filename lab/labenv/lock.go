package labenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// testLockFile is shared by every test using the lab and held
	// exclusively by tests that inject faults.
	testLockFile = "/run/lock/dockplan-lab-tests.lock"
	// lockTimeout bounds the wait for a lock.
	lockTimeout = 10 * time.Minute
)

// LockExclusive takes the lab's test lock exclusively, as RequireExclusive
// does, for a program that is not a test (bench/reconcile measures on the
// lab and injects Swarm into a host): it waits up to 10 minutes until no
// test in any process uses the lab, keeps them waiting until release is
// called, and fails when the lock stays held.
func LockExclusive() (release func(), err error) {
	return lockTests(true)
}

// lockTests takes the lab's test lock, shared or exclusive, and returns its
// release.
func lockTests(exclusive bool) (func(), error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	return flock(testLockFile, how, lockTimeout)
}

// flock takes a flock of kind how on path, polling until timeout, and
// returns its release. Each call opens its own descriptor, so locks taken
// twice in one process behave as in two processes.
func flock(path string, how int, timeout time.Duration) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: still held by another test after %v (a test that injects faults, or a stuck test binary)", path, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

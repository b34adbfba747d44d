package state

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/user"
	"runtime/debug"
	"strings"
	"time"
)

// LockInfo says who holds the state lock. The holder writes it when it
// takes the lock so that others can name it when they have to wait.
type LockInfo struct {
	// ID identifies this lock; Unlock and force-unlock need it.
	ID string `json:"id"`
	// Operation is what the holder is doing: "apply", "destroy",
	// "state rm", "reconcile".
	Operation string `json:"operation"`
	// Who is the holder's user@host.
	Who string `json:"who"`
	// PID is the holder's process ID on that host.
	PID int `json:"pid"`
	// Created is when the lock was taken, in UTC.
	Created time.Time `json:"created"`
	// Version is the holder's dockplan version.
	Version string `json:"version"`
	// Path is the state the lock guards (a file path, a key); the backend
	// fills it in.
	Path string `json:"path"`
}

// NewLockInfo returns the holder info of this process for operation: a
// random ID, user@host, PID, now, and the dockplan version from the build.
func NewLockInfo(operation string) LockInfo {
	return LockInfo{
		ID:        newUUID(),
		Operation: operation,
		Who:       userName() + "@" + hostName(),
		PID:       os.Getpid(),
		Created:   time.Now().UTC().Round(0),
		Version:   buildVersion(),
	}
}

// String is the holder in one line: ID, operation, who, PID, since when.
func (i LockInfo) String() string {
	if i.ID == "" {
		return "a holder that has not written its info yet"
	}
	op := i.Operation
	if op == "" {
		op = "an operation"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lock %s: %s by %s", i.ID, op, orUnknown(i.Who))
	if i.PID > 0 {
		fmt.Fprintf(&b, " (PID %d)", i.PID)
	}
	if !i.Created.IsZero() {
		fmt.Fprintf(&b, " since %s", i.Created.UTC().Format(time.RFC3339))
	}
	if i.Version != "" {
		fmt.Fprintf(&b, ", dockplan %s", i.Version)
	}
	return b.String()
}

// LockedError is a lock (or a save) that could not get the state lock
// before its context was done, because Holder holds it.
type LockedError struct {
	// Where names the state (a file path, a key).
	Where string
	// Holder is the holder's info as it recorded it; its ID is empty when
	// the holder had not written it yet.
	Holder LockInfo
	// Err is why waiting stopped (context.DeadlineExceeded, Canceled).
	Err error
}

// Error names the holder and says how to wait longer or force-unlock.
func (e *LockedError) Error() string {
	msg := fmt.Sprintf("the state %s is locked by another dockplan: %s", e.Where, e.Holder)
	if e.Holder.ID == "" {
		return msg + ". Wait for it to finish and try again, or wait longer with -lock-timeout"
	}
	return msg + fmt.Sprintf(". Wait for it to finish, or wait longer with -lock-timeout; if that process is gone or stuck, run: dockplan force-unlock %s", e.Holder.ID)
}

// Unwrap returns why waiting stopped.
func (e *LockedError) Unwrap() error { return e.Err }

// newUUID returns a random version 4 UUID from crypto/rand.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (it aborts the program instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return "unknown"
}

func hostName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

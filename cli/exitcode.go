package cli

import (
	"errors"
	"fmt"
)

// Exit codes, in one place.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitError: the command failed; the reason was printed on stderr.
	ExitError = 1
	// ExitChanges: there are changes (only with -detailed-exitcode and for
	// one-shot reconcile).
	ExitChanges = 2
	// ExitFormat: fmt -check found files that are not canonically formatted.
	ExitFormat = 3
	// ExitInterrupted: the user interrupted the command.
	ExitInterrupted = 130
)

// exitError ends a command with a code once its message (if any) has been
// printed.
type exitError struct {
	code int
	// msg is printed as "Error: msg" when not empty.
	msg string
}

func (e *exitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// exitWith returns an error that ends the command with code, having
// printed nothing more.
func exitWith(code int) error { return &exitError{code: code} }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}

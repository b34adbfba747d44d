package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Sentinel kinds of failure. Every error returned by this package is an
// *Error whose Kind, when known, is one of these, so that callers can branch
// with errors.Is(err, engine.ErrNotFound) without looking at Docker's errors.
var (
	// ErrNotFound means the container, image or network does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request clashes with what exists, for example a
	// container name already in use.
	ErrConflict = errors.New("conflict")
	// ErrUnreachable means the engine could not be reached or did not answer
	// within the endpoint's timeout.
	ErrUnreachable = errors.New("engine unreachable")
	// ErrInvalidEndpoint means the host block's connection settings are
	// wrong: an unknown scheme, a missing TLS file, an unknown context, and
	// the like. Retrying does not help; the configuration must change.
	ErrInvalidEndpoint = errors.New("invalid endpoint")
)

// Error is the error every Engine method and Dial return. Its text always
// names the host block, and the operation and object when there is one:
//
//	host "web1": inspect container "shop-web-0": not found
type Error struct {
	// HostName is the name of the host block the call was made for.
	HostName string
	// Op is what was being done, in words ("create container", "dial").
	Op string
	// Subject is the container, image or network the call was about; empty
	// for calls about the engine itself.
	Subject string
	// Kind is one of ErrNotFound, ErrConflict, ErrUnreachable,
	// ErrInvalidEndpoint, or nil when the failure fits none of them.
	Kind error
	// Err is the underlying error.
	Err error
}

// Error returns the message, naming the host block first.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %q: %s", e.HostName, e.Op)
	if e.Subject != "" {
		fmt.Fprintf(&b, " %q", e.Subject)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimSpace(e.Err.Error()))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is this error's Kind, so that
// errors.Is(err, ErrNotFound) works without ErrNotFound being in the chain.
func (e *Error) Is(target error) bool {
	return e.Kind != nil && target == e.Kind
}

// NewError returns an *Error. It is exported for fakes and tests of other
// packages that need to produce errors shaped like the real ones.
func NewError(hostName, op, subject string, kind, err error) *Error {
	if err == nil && kind != nil {
		err = kind
	}
	return &Error{HostName: hostName, Op: op, Subject: subject, Kind: kind, Err: err}
}

// classify maps a Docker client error to one of the sentinel kinds.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return ErrNotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		return ErrConflict
	case client.IsErrConnectionFailed(err), errors.Is(err, context.DeadlineExceeded):
		return ErrUnreachable
	}
	return nil
}

// rewrittenError carries a rewritten message but keeps the original chain.
type rewrittenError struct {
	msg string
	err error
}

// Error returns the rewritten message.
func (r *rewrittenError) Error() string { return r.msg }

// Unwrap returns the original error.
func (r *rewrittenError) Unwrap() error { return r.err }

// sshPlaceholderHost is the host name connhelper puts in its HTTP URLs; it
// leaks into error texts ("Cannot connect to the Docker daemon at
// http://docker.example.com") and must be replaced by the real address.
const sshPlaceholderHost = "docker.example.com"

// rewritePlaceholder replaces connhelper's placeholder host in err's text by
// the real address, keeping err in the chain.
func rewritePlaceholder(err error, address, hostname string) error {
	if err == nil || !strings.Contains(err.Error(), sshPlaceholderHost) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), "http://"+sshPlaceholderHost, address)
	msg = strings.ReplaceAll(msg, sshPlaceholderHost, hostname)
	return &rewrittenError{msg: msg, err: err}
}

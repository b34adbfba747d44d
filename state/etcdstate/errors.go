package etcdstate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrUnavailable is what every *UnavailableError matches with errors.Is.
var ErrUnavailable = errors.New("the state store lost quorum or did not answer")

// UnavailableError is an operation that got no answer from a quorum of
// etcd members within the backend's timeout: most members are down or
// unreachable, or the cluster has no leader.
type UnavailableError struct {
	// Op is what dockplan was doing, said before Where ("save serial 7
	// of", "load").
	Op string
	// Where names the state ("etcd:dockplan/shop").
	Where string
	// Endpoints are the members dockplan tried, each followed by what a
	// connection attempt made when the operation failed found there, such
	// as "http://10.0.0.5:2379 (connection refused)".
	Endpoints []string
	// Timeout is how long it waited.
	Timeout time.Duration
	// MaybeWritten is set when a write was sent and no answer came: it may
	// have been carried out.
	MaybeWritten bool
	// Err is the last error etcd or the connection gave.
	Err error
}

// Error says which endpoints did not answer, for how long, and whether
// anything may have been written.
func (e *UnavailableError) Error() string {
	outcome := "nothing was changed"
	if e.MaybeWritten {
		outcome = "the change may or may not have been stored; once the store answers again, run plan to see the current state"
	}
	last := e.Err.Error()
	if errors.Is(e.Err, context.DeadlineExceeded) {
		last = "no answer"
	}
	check := "Check that most etcd members are running and reachable from here"
	if strings.Contains(strings.Join(e.Endpoints, " "), "TLS: ") {
		check = "Check ca_file (it must have signed the members' certificates), and cert_file and key_file (members started with --client-cert-auth need them)"
	}
	return fmt.Sprintf("the state store lost quorum or did not answer within %s: etcd endpoints %s (%s %s: %s). %s; %s",
		e.Timeout, strings.Join(e.Endpoints, ", "), e.Op, e.Where, last, check, outcome)
}

// Unwrap returns ErrUnavailable and the last error, unless that is only
// the deadline of this operation: a caller testing for its own context's
// end must not mistake a lost quorum for it.
func (e *UnavailableError) Unwrap() []error {
	if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}

// Retry pacing while the cluster has no leader or a member is down.
const (
	minRetryWait = 50 * time.Millisecond
	maxRetryWait = 500 * time.Millisecond
)

// do runs op, one etcd request, and retries it while the cluster cannot
// answer (no leader, a member down, a leader change) until b.timeout has
// passed; then it fails with *UnavailableError. write says that op
// changes something, for the error's wording. op must be safe to repeat:
// every write dockplan makes is a transaction whose compare fails when an
// earlier attempt was carried out, and the callers recognise their own
// earlier attempt in what the transaction's else branch returns.
//
// Requests require a leader, so a member that lost it answers at once
// instead of holding the request until the timeout.
func (b *Backend) do(ctx context.Context, what string, write bool, op func(ctx context.Context) error) error {
	start := time.Now()
	octx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	wait := minRetryWait
	maybeWritten := false
	for {
		// A request forwarded to a leader that dies before committing it
		// gets no answer at all: etcd 3.4 holds it until its deadline. A
		// shorter deadline per try lets the next try reach the new leader.
		tctx, tcancel := context.WithTimeout(octx, b.tryTimeout())
		err := op(clientv3.WithRequireLeader(tctx))
		tcancel()
		if err == nil {
			return nil
		}
		if octx.Err() == nil && !transient(err) {
			return b.failed(what, err)
		}
		maybeWritten = maybeWritten || (write && !refusedBeforeWriting(err))
		if octx.Err() == nil {
			select {
			case <-octx.Done():
			case <-time.After(wait):
				wait = min(2*wait, maxRetryWait)
				continue
			}
		}
		return b.gaveUp(ctx, what, time.Since(start), maybeWritten, err)
	}
}

// gaveUp is the error of an operation that got no usable answer within
// its time, waited: *UnavailableError, unless the caller cancelled it.
// When the caller's own deadline came first (a lock timeout shorter than
// the backend's), that is the time the store did not answer within.
func (b *Backend) gaveUp(ctx context.Context, what string, waited time.Duration, maybeWritten bool, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s %s: %w", what, b.where, ctx.Err())
	}
	timeout := b.timeout
	if ctx.Err() != nil {
		timeout = waited.Round(time.Millisecond)
	}
	return &UnavailableError{Op: what, Where: b.where, Endpoints: b.probeEndpoints(), Timeout: timeout, MaybeWritten: maybeWritten, Err: err}
}

// Bounds of one try's deadline: a third of the operation's timeout, but no
// less than minTryTimeout (etcd elects a new leader in 1-2 s by default).
const minTryTimeout = time.Second

// tryTimeout is the deadline of one try within an operation.
func (b *Backend) tryTimeout() time.Duration {
	return max(b.timeout/3, minTryTimeout)
}

// code returns the gRPC code of an etcd error; codes.Unknown for others.
func code(err error) codes.Code {
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) {
		return etcdErr.Code()
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// transient reports whether err may go away by itself: no leader, a leader
// change, a member down or overloaded, a request that timed out.
func transient(err error) bool {
	switch code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, rpctypes.ErrTooManyRequests) || errors.Is(err, context.DeadlineExceeded)
}

// refusedBeforeWriting reports whether err says that the member refused the
// request before proposing it, so nothing of it can be stored.
func refusedBeforeWriting(err error) bool {
	for _, refused := range []error{rpctypes.ErrNoLeader, rpctypes.ErrTooManyRequests} {
		if errors.Is(err, refused) {
			return true
		}
	}
	return false
}

// failed words an error etcd gave for what: credentials, size limits and
// anything else, naming the endpoints.
func (b *Backend) failed(what string, err error) error {
	eps := strings.Join(b.endpoints, ", ")
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrInvalidAuthToken),
		errors.Is(err, rpctypes.ErrAuthOldRevision):
		return fmt.Errorf("etcd at %s refused dockplan's credentials (%s %s: %v); set %s and %s to an etcd user and its password", eps, what, b.where, err, UsernameEnv, PasswordEnv)
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Errorf("etcd at %s denied %s %s (%v); grant the user in %s read and write access to the keys under %s/", eps, what, b.where, err, UsernameEnv, b.prefix)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("etcd at %s refused a request as too large (%s %s: %v); dockplan sends up to %d KiB at once, so the members' --max-request-bytes must be at least 1.5 MiB (the default)", eps, what, b.where, err, b.chunkSize>>10)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("etcd at %s is out of space (%s %s: %v); compact and defragment it, or raise --quota-backend-bytes", eps, what, b.where, err)
	}
	return fmt.Errorf("etcd at %s: %s %s: %w", eps, what, b.where, err)
}

// probeTimeout bounds each connection attempt of probeEndpoints.
const probeTimeout = 500 * time.Millisecond

// probeEndpoints returns each endpoint with what one connection attempt
// (and TLS handshake, for TLS endpoints) found there, for an error
// message: the gRPC client reports only that no answer came.
func (b *Backend) probeEndpoints() []string {
	out := make([]string, len(b.endpoints))
	var wg sync.WaitGroup
	for i, ep := range b.endpoints {
		wg.Go(func() { out[i] = fmt.Sprintf("%s (%s)", ep, b.probe(ep)) })
	}
	wg.Wait()
	return out
}

// probe connects to endpoint once and says what happened.
func (b *Backend) probe(endpoint string) string {
	addr := endpoint
	if _, rest, ok := strings.Cut(endpoint, "://"); ok {
		addr = rest
	}
	addr, _, _ = strings.Cut(addr, "/")
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return dialProblem(err)
	}
	defer conn.Close()
	if b.tls == nil {
		return "accepts connections"
	}
	cfg := b.tls.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil && cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(probeTimeout))
	if err := tc.Handshake(); err != nil {
		return "TLS: " + err.Error()
	}
	// With TLS 1.3 a member that wants a client certificate refuses it
	// after the handshake: read its first bytes to find out.
	var buf [1]byte
	if _, err := tc.Read(buf[:]); err != nil && !isTimeout(err) {
		return "TLS: " + err.Error()
	}
	return "accepts TLS connections"
}

// dialProblem words a failed connection attempt briefly.
func dialProblem(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case isTimeout(err):
		return fmt.Sprintf("no connection within %s", probeTimeout)
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

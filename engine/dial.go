package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/client"
)

// dockerEngine implements Engine with the Docker Go client.
type dockerEngine struct {
	hostName string
	target   *target
	timeout  time.Duration
	cli      *client.Client
}

var _ Engine = (*dockerEngine)(nil)

// Dial validates ep, connects to the engine and pings it once within the
// endpoint's timeout, negotiating the API version from that ping. It returns
// an *Error naming the host block: ErrInvalidEndpoint for bad settings,
// ErrUnreachable when the engine does not answer.
//
// The explicit ping matters: with lazy negotiation the Docker client
// swallows a failed first ping and dials again, which doubles the wait on a
// silent host.
func Dial(ctx context.Context, ep Endpoint) (Engine, error) {
	t, err := resolve(ep)
	if err != nil {
		return nil, err
	}
	cli, err := newClient(t, ep.timeout())
	if err != nil {
		return nil, NewError(ep.HostName, "connect to", t.address, ErrInvalidEndpoint, err)
	}
	e := &dockerEngine{hostName: ep.HostName, target: t, timeout: ep.timeout(), cli: cli}
	if _, err := e.ping(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return e, nil
}

// newClient builds a Docker client for t with our own transport: a dial
// timeout, no proxy from the environment, and a cap on connections.
func newClient(t *target, timeout time.Duration) (*client.Client, error) {
	tr := &http.Transport{
		MaxConnsPerHost:     t.maxConns,
		MaxIdleConns:        t.maxConns,
		MaxIdleConnsPerHost: t.maxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeout,
		TLSClientConfig:     t.tlsConfig,
	}
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if t.ssh != nil {
		dial = t.ssh.Dialer
	} else {
		dialer := &net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, t.dialNetwork, t.dialAddr)
			if netErr := net.Error(nil); errors.As(err, &netErr) && netErr.Timeout() {
				// The Docker client turns a dial timeout (a net.Error)
				// into "Cannot connect to the Docker daemon at …. Is the
				// docker daemon running?" and drops the cause, which is
				// wrong for a host that is up but cut off (seen with a
				// partitioned lab host, client v28.5.2). A plain error
				// keeps its text.
				return nil, fmt.Errorf("no answer from %s within %s (connect timed out)", t.address, timeout)
			}
			return conn, err
		}
	}
	cli, err := client.NewClientWithOpts(
		client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect}),
		// WithHost reconfigures the transport's dialer for the host's
		// scheme, so it must come before WithDialContext; the other way
		// round, ssh calls try to resolve connhelper's placeholder host.
		client.WithHost(t.clientHost),
		client.WithDialContext(dial),
		client.WithAPIVersionNegotiation(),
		client.WithUserAgent("dockplan"),
	)
	if err != nil {
		return nil, err
	}
	// WithHost sets ProxyFromEnvironment for tcp; an engine is never
	// reached through an HTTP proxy.
	tr.Proxy = nil
	return cli, nil
}

// HostName returns the name of the host block.
func (e *dockerEngine) HostName() string { return e.hostName }

// Close releases idle connections.
func (e *dockerEngine) Close() error { return e.cli.Close() }

// ping pings the engine within the timeout and negotiates the API version.
func (e *dockerEngine) ping(ctx context.Context) (types.Ping, error) {
	return call(e, ctx, "ping", "", func(ctx context.Context) (types.Ping, error) {
		p, err := e.cli.Ping(ctx)
		if err == nil {
			e.cli.NegotiateAPIVersionPing(p)
		}
		return p, err
	})
}

// do runs fn with the per-call deadline and wraps its error.
func (e *dockerEngine) do(ctx context.Context, op, subject string, timeout time.Duration, fn func(context.Context) error) error {
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := fn(callCtx); err != nil {
		return e.wrap(ctx, op, subject, timeout, err)
	}
	return nil
}

// call is do for functions that return a value.
func call[T any](e *dockerEngine, ctx context.Context, op, subject string, fn func(context.Context) (T, error)) (T, error) {
	var out T
	err := e.do(ctx, op, subject, e.timeout, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	return out, err
}

// wrap turns a Docker client error into an *Error. A deadline that was ours
// (the caller's context is still live) is reported as the engine not
// answering in time; connhelper's placeholder host is replaced by the real
// address.
func (e *dockerEngine) wrap(parent context.Context, op, subject string, limit time.Duration, err error) error {
	kind := classify(err)
	switch {
	case parent.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// The caller gave up; that says nothing about the engine.
		kind = nil
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("no answer from %s within %s: %w", e.target.address, limit, err)
		kind = ErrUnreachable
	}
	err = rewritePlaceholder(err, e.target.address, e.target.sshHostname)
	if e.target.tlsConfig != nil {
		err = tlsHint(err)
	}
	return NewError(e.hostName, op, subject, kind, err)
}

// tlsHint adds what to check to the TLS failures users meet most.
func tlsHint(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return fmt.Errorf("%w (the engine's certificate is not signed by the CA in the tls block)", err)
	case strings.Contains(msg, "remote error: tls:"):
		return fmt.Errorf("%w (the engine refused the client certificate; check the tls block's cert and key)", err)
	case strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "doesn't contain any IP SANs"),
		strings.Contains(msg, "certificate is not valid for any names"):
		return fmt.Errorf("%w (the engine's certificate does not name the address used)", err)
	case strings.Contains(msg, "certificate has expired or is not yet valid"):
		return fmt.Errorf("%w (check the engine certificate's dates, and this machine's clock)", err)
	}
	return err
}

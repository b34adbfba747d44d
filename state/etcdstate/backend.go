package etcdstate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/dockplan/dockplan/state"
)

// Environment variables holding the etcd user and password. They are not
// named ETCD_*, which etcd and etcdctl read as their own settings.
const (
	UsernameEnv = "DOCKPLAN_ETCD_USERNAME"
	PasswordEnv = "DOCKPLAN_ETCD_PASSWORD"
)

// Defaults of Options.
const (
	// DefaultLockTTL is the lease TTL of the lock: how long a holder that
	// died (or lost contact with etcd) keeps the lock.
	DefaultLockTTL = 10 * time.Second
	// DefaultTimeout is how long one operation waits for the cluster (a
	// leader, a quorum) before it fails with *UnavailableError.
	DefaultTimeout = 5 * time.Second
)

// defaultChunkSize is the most compressed state bytes in one etcd value:
// etcd refuses requests over --max-request-bytes (1.5 MiB by default), and
// the last chunk shares its request with the manifest.
const defaultChunkSize = 1 << 20

// Options say where the state lives in etcd and how to reach it.
type Options struct {
	// Endpoints are the members' client URLs ("http://10.0.0.5:2379",
	// "https://…"); at least one. The client spreads requests over them
	// and goes on with the others when one is down.
	Endpoints []string
	// Prefix is the key prefix of this state ("dockplan/shop"): every key
	// the backend reads or writes starts with Prefix + "/". One prefix
	// per state.
	Prefix string
	// LockTTL is the lease TTL of the lock, rounded up to whole seconds
	// (etcd leases count seconds); 0 means DefaultLockTTL. The holder
	// renews the lease about every LockTTL/3; a holder that dies frees
	// the lock at most LockTTL later.
	LockTTL time.Duration
	// Timeout bounds how long one operation waits for a leader and a
	// quorum; 0 means DefaultTimeout.
	Timeout time.Duration
	// CAFile is a PEM file of the authorities that signed the members'
	// certificates; empty means the system's.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// members that require one (etcd --client-cert-auth). Both or neither.
	CertFile, KeyFile string
}

// Backend is the etcd state backend. Use New, and Close when done.
type Backend struct {
	client    *clientv3.Client
	endpoints []string
	prefix    string
	// where names the state in errors and lock info ("etcd:dockplan/shop").
	where     string
	ttl       time.Duration
	timeout   time.Duration
	chunkSize int
	// tls is the client TLS configuration, nil without TLS.
	tls *tls.Config

	// ctx lives as long as the Backend and carries the lease keep-alive.
	ctx    context.Context
	cancel context.CancelFunc

	// opMu: each Save attempt holds it for reading, Unlock and
	// ForceUnlock for writing, so an Unlock never ends a lock under a Save
	// in flight that relies on it.
	opMu sync.RWMutex
	// sessionMu serializes creating the lease session.
	sessionMu sync.Mutex
	// mu guards the fields below.
	mu sync.Mutex
	// held is the lock this value holds, nil when none.
	held *heldLock
	// lost is a lock of this value that was broken from outside and
	// replaced by a newer Lock; Unlock of its ID reports ErrLockLost.
	lost *heldLock
	// session keeps the lock lease alive; nil until the first Lock.
	session *concurrency.Session
	// last is the stored manifest this value read or wrote last, the
	// guess a Save compares against before reading anything.
	last *seen
	// closed is set by Close.
	closed bool
}

// heldLock is one lock taken by Lock.
type heldLock struct {
	info state.LockInfo
	// rev is the lock key's create revision: a lock key deleted and
	// created again by another holder has another one.
	rev int64
}

// seen is a stored manifest and its revision.
type seen struct {
	header     state.Header
	generation string
	modRev     int64
}

var _ state.Backend = (*Backend)(nil)

// New returns the backend for the state under opts.Prefix. It reads the
// credentials from UsernameEnv and PasswordEnv (both or neither) and, when
// they are set, logs in, waiting up to opts.Timeout; otherwise nothing is
// contacted until the backend is used.
func New(opts Options) (*Backend, error) {
	prefix := strings.TrimRight(opts.Prefix, "/")
	if prefix == "" {
		return nil, errors.New("etcd state: no key prefix; give each state its own prefix, such as dockplan/<project>")
	}
	if len(opts.Endpoints) == 0 {
		return nil, fmt.Errorf("etcd state %s: no endpoints; give the members' client URLs, such as http://10.0.0.5:2379", prefix)
	}
	user, password := os.Getenv(UsernameEnv), os.Getenv(PasswordEnv)
	if (user == "") != (password == "") {
		return nil, fmt.Errorf("etcd state %s: only one of %s and %s is set; set both, or neither when the cluster has no authentication", prefix, UsernameEnv, PasswordEnv)
	}
	tlsConfig, err := tlsConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("etcd state %s: %w", prefix, err)
	}
	b := &Backend{
		endpoints: append([]string(nil), opts.Endpoints...),
		prefix:    prefix,
		where:     "etcd:" + prefix,
		ttl:       orDefault(opts.LockTTL, DefaultLockTTL),
		timeout:   orDefault(opts.Timeout, DefaultTimeout),
		chunkSize: defaultChunkSize,
		tls:       tlsConfig,
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   b.endpoints,
		DialTimeout: b.timeout,
		TLS:         tlsConfig,
		Username:    user,
		Password:    password,
		// The client's own log lines (retries, lost connections) would
		// land on dockplan's stderr; its errors reach the caller instead.
		Logger: zap.NewNop(),
	})
	if err != nil {
		// Only a login talks to the members here.
		if transient(err) {
			return nil, &UnavailableError{Op: "log in for", Where: b.where, Endpoints: b.probeEndpoints(), Timeout: b.timeout, Err: err}
		}
		return nil, b.failed("log in for", err)
	}
	b.client = client
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// tlsConfig builds the client TLS settings from opts; nil when opts name
// no file and no endpoint is https.
func tlsConfig(opts Options) (*tls.Config, error) {
	https := false
	for _, ep := range opts.Endpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if opts.CAFile == "" && opts.CertFile == "" && opts.KeyFile == "" && !https {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate", opts.CAFile)
		}
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("a client certificate needs both cert_file and key_file")
	}
	if opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the client certificate %s with key %s: %w", opts.CertFile, opts.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Where names the state in errors and lock info: "etcd:" and the prefix.
func (b *Backend) Where() string { return b.where }

// Prefix returns the key prefix of the state, without a trailing slash.
// Keys under it other than state, chunks/ and lock are not the backend's:
// the reconcile daemon's leader election lives there too.
func (b *Backend) Prefix() string { return b.prefix }

// Client returns the backend's etcd client, for other uses of the same
// cluster with the same endpoints, credentials and TLS (the reconcile
// daemon's leader election). It is closed by Close.
func (b *Backend) Client() *clientv3.Client { return b.client }

// Timeout returns how long one operation waits for a leader and a quorum.
func (b *Backend) Timeout() time.Duration { return b.timeout }

// Close releases the lock this value holds, if any (by revoking its lease)
// and closes the connection. The Backend cannot be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	session := b.session
	b.session = nil
	b.held = nil
	b.mu.Unlock()
	var err error
	if session != nil {
		session.Orphan()
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		_, rerr := b.client.Revoke(ctx, session.Lease())
		cancel()
		if rerr != nil {
			err = fmt.Errorf("could not revoke the lock lease on %s (%v); a lock this dockplan held stays until its lease expires in %s", b.where, rerr, b.ttl)
		}
	}
	b.cancel()
	return errors.Join(err, b.client.Close())
}

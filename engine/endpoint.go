package engine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/connhelper"
)

// DefaultTimeout is the per-call deadline used when Endpoint.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Default connection caps per engine. An ssh:// engine opens one ssh session
// per concurrent HTTP connection, and sshd's default MaxStartups drops
// concurrent dials beyond about ten, so ssh gets a small cap.
const (
	defaultMaxConnsSSH   = 6
	defaultMaxConnsOther = 16
)

// Endpoint says how to reach one Docker engine. Exactly one of Address and
// Context must be set.
type Endpoint struct {
	// HostName is the name of the host block; every error names it.
	HostName string
	// Address is unix:///path, tcp://host[:port] or
	// ssh://[user@]host[:port][/path/to/docker.sock].
	Address string
	// Context is the name of a docker context to read the address and TLS
	// material from, instead of Address.
	Context string
	// TLS, when set, makes a tcp:// connection use TLS with verification.
	TLS *TLSFiles
	// Insecure allows plain tcp:// to a non-loopback address, and a context
	// whose endpoint skips TLS verification.
	Insecure bool
	// Timeout is the deadline of every call and of the first ping; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// SSH holds options for ssh:// addresses.
	SSH SSHOptions
	// DockerConfigDir is where docker contexts live; empty means
	// $DOCKER_CONFIG, or ~/.docker when that is unset too.
	DockerConfigDir string
	// MaxConnections caps concurrent connections to the engine; zero means
	// 6 for ssh:// and 16 otherwise. Calls beyond the cap wait for a free
	// connection (within their deadline); an open Events stream holds one.
	MaxConnections int
}

// TLSFiles names the PEM files of a TLS client configuration.
type TLSFiles struct {
	// CAFile is the CA bundle that signs the engine's certificate; empty
	// means the system's roots.
	CAFile string
	// CertFile is the client certificate; set together with KeyFile.
	CertFile string
	// KeyFile is the client certificate's private key.
	KeyFile string
}

// SSHOptions are extra settings for ssh:// endpoints. The ssh client runs in
// batch mode: it never prompts, so a missing key or an unknown host key is
// an error at once.
type SSHOptions struct {
	// IdentityFile is passed as ssh -i.
	IdentityFile string
	// KnownHostsFile is passed as -o UserKnownHostsFile=.
	KnownHostsFile string
	// StrictHostKeyChecking is passed as -o StrictHostKeyChecking= when set
	// ("yes", "accept-new" or "no").
	StrictHostKeyChecking string
	// Options are more -o values, for example "ServerAliveInterval=5".
	Options []string
}

// timeout returns the effective per-call deadline.
func (ep Endpoint) timeout() time.Duration {
	if ep.Timeout > 0 {
		return ep.Timeout
	}
	return DefaultTimeout
}

// target is an Endpoint resolved and validated, ready to build a client.
type target struct {
	scheme      string // "unix", "tcp" or "ssh"
	address     string // the address as shown in messages
	clientHost  string // the host given to the Docker client
	dialNetwork string // "unix" or "tcp"; empty for ssh
	dialAddr    string // socket path or host:port; empty for ssh
	tlsConfig   *tls.Config
	ssh         *connhelper.ConnectionHelper
	sshHostname string
	maxConns    int
}

// lookPath finds the ssh client; tests replace it.
var lookPath = exec.LookPath

// supportedSchemes is listed in the error for an unknown scheme.
const supportedSchemes = "unix://, tcp:// (with a tls block, or insecure = true off loopback) or ssh://"

// resolve validates ep and turns it into a target. It reads TLS files and
// context metadata and checks that a unix socket exists, but does no network
// I/O.
func resolve(ep Endpoint) (*target, error) {
	fail := func(subject string, kind error, format string, args ...any) error {
		return NewError(ep.HostName, "connect to", subject, kind, fmt.Errorf(format, args...))
	}
	switch {
	case ep.Address != "" && ep.Context != "":
		return nil, fail("", ErrInvalidEndpoint, "set either address or context, not both")
	case ep.Context != "":
		return resolveContext(ep)
	case ep.Address == "":
		return nil, fail("", ErrInvalidEndpoint, "no address or context set; use an address (%s) or context = \"name\"", supportedSchemes)
	}
	u, err := url.Parse(ep.Address)
	if err != nil {
		return nil, fail(ep.Address, ErrInvalidEndpoint, "not a valid address: %v", unwrapURLError(err))
	}
	var t *target
	switch u.Scheme {
	case "unix":
		t, err = resolveUnix(ep, u)
	case "tcp":
		t, err = resolveTCP(ep, u, nil)
	case "ssh":
		t, err = resolveSSH(ep, u)
	case "":
		return nil, fail(ep.Address, ErrInvalidEndpoint, "the address has no scheme; use %s", supportedSchemes)
	default:
		return nil, fail(ep.Address, ErrInvalidEndpoint, "unknown scheme %q; use %s", u.Scheme+"://", supportedSchemes)
	}
	if err != nil {
		return nil, err
	}
	t.maxConns = maxConnsFor(ep, t.scheme)
	return t, nil
}

func unwrapURLError(err error) error {
	var uErr *url.Error
	if errors.As(err, &uErr) {
		return uErr.Err
	}
	return err
}

// resolveUnix checks that the socket exists: a missing socket is the most
// common mistake (wrong path, dockerd not running) and deserves a clear word.
func resolveUnix(ep Endpoint, u *url.URL) (*target, error) {
	path := u.Path
	if u.Host != "" {
		// unix://relative/path parses the first element as the host.
		path = u.Host + u.Path
	}
	if path == "" {
		return nil, NewError(ep.HostName, "connect to", ep.Address, ErrInvalidEndpoint,
			errors.New("no socket path; write unix:///path/to/docker.sock"))
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, NewError(ep.HostName, "connect to", ep.Address, ErrUnreachable,
			fmt.Errorf("socket %s does not exist; is dockerd running, and is the path right?", path))
	case err != nil:
		return nil, NewError(ep.HostName, "connect to", ep.Address, ErrUnreachable, err)
	case info.Mode()&os.ModeSocket == 0:
		return nil, NewError(ep.HostName, "connect to", ep.Address, ErrInvalidEndpoint,
			fmt.Errorf("%s is not a unix socket", path))
	}
	return &target{
		scheme:      "unix",
		address:     "unix://" + path,
		clientHost:  "unix://" + path,
		dialNetwork: "unix",
		dialAddr:    path,
	}, nil
}

// resolveTCP handles tcp:// addresses. ctxTLS is TLS material that came from
// a docker context (nil otherwise).
func resolveTCP(ep Endpoint, u *url.URL, ctxTLS *contextTLS) (*target, error) {
	fail := func(kind error, err error) error {
		return NewError(ep.HostName, "connect to", ep.Address, kind, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fail(ErrInvalidEndpoint, errors.New("no host; write tcp://host:port"))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fail(ErrInvalidEndpoint, errors.New("a tcp:// address takes only host and port"))
	}
	useTLS := ep.TLS != nil || (ctxTLS != nil && ctxTLS.enabled())
	port := u.Port()
	if port == "" {
		port = "2375"
		if useTLS {
			port = "2376"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fail(ErrInvalidEndpoint, fmt.Errorf("bad port %q", port))
	}
	hostPort := net.JoinHostPort(u.Hostname(), port)
	t := &target{
		scheme:      "tcp",
		address:     "tcp://" + hostPort,
		clientHost:  "tcp://" + hostPort,
		dialNetwork: "tcp",
		dialAddr:    hostPort,
	}
	var err error
	switch {
	case ep.TLS != nil:
		t.tlsConfig, err = loadTLS(*ep.TLS, u.Hostname())
	case ctxTLS != nil && ctxTLS.enabled():
		t.tlsConfig, err = ctxTLS.config(ep, u.Hostname())
	case !isLoopback(u.Hostname()) && !ep.Insecure:
		err = fmt.Errorf("plain tcp to %s is unencrypted and unauthenticated; add a tls block, "+
			"or insecure = true if this network is trusted", u.Hostname())
	}
	if err != nil {
		return nil, fail(ErrInvalidEndpoint, err)
	}
	return t, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP. Names are
// not resolved: only what is loopback on its face counts.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadTLS builds a verifying TLS client configuration from PEM files,
// naming the file in every error.
func loadTLS(files TLSFiles, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if files.CAFile != "" {
		pem, err := readTLSFile("CA", files.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", files.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("tls needs both a certificate file and a key file, or neither")
	}
	if files.CertFile != "" {
		certPEM, err := readTLSFile("certificate", files.CertFile)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readTLSFile("key", files.KeyFile)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %s and key %s: %w", files.CertFile, files.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func readTLSFile(what, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("TLS %s file %s does not exist", what, path)
	case err != nil:
		return nil, fmt.Errorf("TLS %s file %s cannot be read: %w", what, path, err)
	}
	return data, nil
}

// resolveSSH builds a connhelper for an ssh:// address with our own connect
// timeout: connhelper's default is 30s, and a silent host would hang for
// twice that because API version negotiation dials again after a failed
// ping.
func resolveSSH(ep Endpoint, u *url.URL) (*target, error) {
	fail := func(err error) error {
		return NewError(ep.HostName, "connect to", ep.Address, ErrInvalidEndpoint, err)
	}
	if ep.TLS != nil {
		return nil, fail(errors.New("a tls block does not apply to ssh://; ssh encrypts the connection"))
	}
	if _, err := lookPath("ssh"); err != nil {
		return nil, fail(errors.New("ssh:// needs the ssh client, and no ssh is on PATH (Debian: apt-get install openssh-client)"))
	}
	helper, err := connhelper.GetConnectionHelperWithSSHOpts(ep.Address, sshFlags(ep))
	if err != nil {
		return nil, fail(unwrapURLError(err))
	}
	if helper == nil {
		return nil, fail(errors.New("not an ssh address"))
	}
	return &target{
		scheme:      "ssh",
		address:     ep.Address,
		clientHost:  helper.Host,
		ssh:         helper,
		sshHostname: u.Hostname(),
	}, nil
}

// sshFlags turns the endpoint's options into ssh command-line flags.
func sshFlags(ep Endpoint) []string {
	secs := int((ep.timeout() + time.Second - 1) / time.Second)
	flags := []string{
		"-o", "ConnectTimeout=" + strconv.Itoa(secs),
		"-o", "BatchMode=yes",
	}
	if ep.SSH.IdentityFile != "" {
		flags = append(flags, "-i", ep.SSH.IdentityFile, "-o", "IdentitiesOnly=yes")
	}
	if ep.SSH.KnownHostsFile != "" {
		flags = append(flags, "-o", "UserKnownHostsFile="+ep.SSH.KnownHostsFile)
	}
	if ep.SSH.StrictHostKeyChecking != "" {
		flags = append(flags, "-o", "StrictHostKeyChecking="+ep.SSH.StrictHostKeyChecking)
	}
	for _, o := range ep.SSH.Options {
		flags = append(flags, "-o", o)
	}
	return flags
}

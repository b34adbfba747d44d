package engine

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeSSH makes resolve find an ssh client whether or not one is installed.
func fakeSSH(t *testing.T) {
	t.Helper()
	old := lookPath
	lookPath = func(string) (string, error) { return "/usr/bin/ssh", nil }
	t.Cleanup(func() { lookPath = old })
}

func TestResolveRejectsBadEndpoints(t *testing.T) {
	fakeSSH(t)
	dir := t.TempDir()
	certs := writeTestCerts(t, dir)
	regular := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name     string
		ep       Endpoint
		kind     error
		fragment []string
	}{
		{"unknown scheme", Endpoint{Address: "ftp://h1:21"}, ErrInvalidEndpoint,
			[]string{`unknown scheme "ftp://"`, "unix://", "tcp://", "ssh://"}},
		{"no scheme", Endpoint{Address: "/var/run/docker.sock"}, ErrInvalidEndpoint, []string{"no scheme", "unix://"}},
		{"neither address nor context", Endpoint{}, ErrInvalidEndpoint, []string{"no address or context"}},
		{"both address and context", Endpoint{Address: "unix:///x", Context: "c"}, ErrInvalidEndpoint,
			[]string{"either address or context"}},
		{"plain tcp off loopback", Endpoint{Address: "tcp://10.213.0.11:2375"}, ErrInvalidEndpoint,
			[]string{"insecure = true", "tls block", "10.213.0.11"}},
		{"plain tcp to a name", Endpoint{Address: "tcp://docker.internal:2375"}, ErrInvalidEndpoint,
			[]string{"insecure = true"}},
		{"tcp without host", Endpoint{Address: "tcp://:2375"}, ErrInvalidEndpoint, []string{"no host"}},
		{"tcp with path", Endpoint{Address: "tcp://127.0.0.1:2375/x"}, ErrInvalidEndpoint, []string{"only host and port"}},
		{"tcp bad port", Endpoint{Address: "tcp://127.0.0.1:99999"}, ErrInvalidEndpoint, []string{`bad port "99999"`}},
		{"missing CA file", Endpoint{Address: "tcp://10.213.0.11:2376", TLS: &TLSFiles{CAFile: missing}},
			ErrInvalidEndpoint, []string{"TLS CA file", missing, "does not exist"}},
		{"missing key file", Endpoint{Address: "tcp://10.213.0.11:2376",
			TLS: &TLSFiles{CAFile: certs.CAFile, CertFile: certs.CertFile, KeyFile: missing}},
			ErrInvalidEndpoint, []string{"TLS key file", missing}},
		{"cert without key", Endpoint{Address: "tcp://10.213.0.11:2376",
			TLS: &TLSFiles{CAFile: certs.CAFile, CertFile: certs.CertFile}},
			ErrInvalidEndpoint, []string{"both a certificate file and a key file"}},
		{"CA file is not PEM", Endpoint{Address: "tcp://10.213.0.11:2376", TLS: &TLSFiles{CAFile: regular}},
			ErrInvalidEndpoint, []string{"holds no PEM certificate", regular}},
		{"missing socket", Endpoint{Address: "unix:///nonexistent/docker.sock"}, ErrUnreachable,
			[]string{"/nonexistent/docker.sock does not exist", "is dockerd running"}},
		{"socket path is a file", Endpoint{Address: "unix://" + regular}, ErrInvalidEndpoint,
			[]string{"is not a unix socket"}},
		{"empty socket path", Endpoint{Address: "unix://"}, ErrInvalidEndpoint, []string{"no socket path"}},
		{"ssh with password", Endpoint{Address: "ssh://root:secret@h1"}, ErrInvalidEndpoint,
			[]string{"password is not supported"}},
		{"ssh with query", Endpoint{Address: "ssh://root@h1?x=1"}, ErrInvalidEndpoint, []string{"query parameters"}},
		{"ssh without host", Endpoint{Address: "ssh://root@"}, ErrInvalidEndpoint, []string{"hostname is empty"}},
		{"ssh with tls block", Endpoint{Address: "ssh://h1", TLS: &certs}, ErrInvalidEndpoint,
			[]string{"does not apply to ssh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ep.HostName = "web1"
			_, err := resolve(tt.ep)
			wantErrText(t, err, `host "web1"`)
			wantErrText(t, err, tt.fragment...)
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false for %v", tt.kind, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.HostName != "web1" {
				t.Errorf("error %v is not an *Error for host web1", err)
			}
		})
	}
}

func TestResolveAcceptsGoodEndpoints(t *testing.T) {
	fakeSSH(t)
	certs := writeTestCerts(t, t.TempDir())
	sock := listenUnix(t)
	tests := []struct {
		name        string
		ep          Endpoint
		wantScheme  string
		wantAddress string
		wantTLS     bool
		wantConns   int
	}{
		{"unix socket", Endpoint{Address: "unix://" + sock}, "unix", "unix://" + sock, false, 16},
		{"plain tcp to loopback", Endpoint{Address: "tcp://127.0.0.1:2375"}, "tcp", "tcp://127.0.0.1:2375", false, 16},
		{"plain tcp to localhost, default port", Endpoint{Address: "tcp://localhost"}, "tcp", "tcp://localhost:2375", false, 16},
		{"plain tcp to ipv6 loopback", Endpoint{Address: "tcp://[::1]:2375"}, "tcp", "tcp://[::1]:2375", false, 16},
		{"plain tcp off loopback with insecure", Endpoint{Address: "tcp://10.213.0.11:2375", Insecure: true},
			"tcp", "tcp://10.213.0.11:2375", false, 16},
		{"tls, default port", Endpoint{Address: "tcp://10.213.0.11", TLS: &certs}, "tcp", "tcp://10.213.0.11:2376", true, 16},
		{"tls with system roots", Endpoint{Address: "tcp://10.213.0.11:2376", TLS: &TLSFiles{}},
			"tcp", "tcp://10.213.0.11:2376", true, 16},
		{"connection cap", Endpoint{Address: "tcp://127.0.0.1:2375", MaxConnections: 3}, "tcp", "tcp://127.0.0.1:2375", false, 3},
		{"ssh user and host", Endpoint{Address: "ssh://root@10.213.0.11"}, "ssh", "ssh://root@10.213.0.11", false, 6},
		{"ssh with port", Endpoint{Address: "ssh://root@10.213.0.11:2222"}, "ssh", "ssh://root@10.213.0.11:2222", false, 6},
		{"ssh with socket path", Endpoint{Address: "ssh://root@h1/run/lab/h1/docker.sock"},
			"ssh", "ssh://root@h1/run/lab/h1/docker.sock", false, 6},
		{"ssh without user", Endpoint{Address: "ssh://h1"}, "ssh", "ssh://h1", false, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ep.HostName = "web1"
			got, err := resolve(tt.ep)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if got.scheme != tt.wantScheme || got.address != tt.wantAddress {
				t.Errorf("got scheme %q address %q, want %q %q", got.scheme, got.address, tt.wantScheme, tt.wantAddress)
			}
			if (got.tlsConfig != nil) != tt.wantTLS {
				t.Errorf("TLS configured = %v, want %v", got.tlsConfig != nil, tt.wantTLS)
			}
			if got.tlsConfig != nil && got.tlsConfig.InsecureSkipVerify {
				t.Error("TLS verification is off")
			}
			if got.maxConns != tt.wantConns {
				t.Errorf("maxConns = %d, want %d", got.maxConns, tt.wantConns)
			}
			if tt.wantScheme == "ssh" && (got.ssh == nil || got.sshHostname == "") {
				t.Errorf("ssh target without helper or hostname: %+v", got)
			}
		})
	}
}

func TestResolveSSHMissingClient(t *testing.T) {
	old := lookPath
	lookPath = func(string) (string, error) { return "", errors.New("not found") }
	t.Cleanup(func() { lookPath = old })
	_, err := resolve(Endpoint{HostName: "web1", Address: "ssh://root@h1"})
	wantErrText(t, err, `host "web1"`, "openssh-client")
}

func TestSSHFlags(t *testing.T) {
	tests := []struct {
		name string
		ep   Endpoint
		want []string
	}{
		{"defaults", Endpoint{}, []string{"-o", "ConnectTimeout=10", "-o", "BatchMode=yes"}},
		{"timeout rounds up", Endpoint{Timeout: 1500 * time.Millisecond}, []string{"-o", "ConnectTimeout=2", "-o", "BatchMode=yes"}},
		{"all options", Endpoint{Timeout: 3 * time.Second, SSH: SSHOptions{
			IdentityFile: "/k/id", KnownHostsFile: "/k/known", StrictHostKeyChecking: "accept-new",
			Options: []string{"ServerAliveInterval=5"},
		}}, []string{
			"-o", "ConnectTimeout=3", "-o", "BatchMode=yes", "-i", "/k/id", "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile=/k/known", "-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=5",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sshFlags(tt.ep); !slices.Equal(got, tt.want) {
				t.Errorf("sshFlags = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResolveContext(t *testing.T) {
	certs := writeTestCerts(t, t.TempDir())
	sock := listenUnix(t)
	configDir := t.TempDir()
	writeContext(t, configDir, "local", "unix://"+sock, false, nil)
	writeContext(t, configDir, "gone", "unix:///nonexistent/docker.sock", false, nil)
	writeContext(t, configDir, "secure", "tcp://10.213.0.11:2376", false, &certs)
	writeContext(t, configDir, "skipverify", "tcp://10.213.0.11:2376", true, &certs)
	writeContext(t, configDir, "plain", "tcp://10.213.0.11:2375", false, nil)
	writeContext(t, configDir, "weird", "ftp://x", false, nil)
	tests := []struct {
		name        string
		context     string
		insecure    bool
		wantAddress string
		wantTLS     bool
		wantErr     []string
	}{
		{name: "socket", context: "local", wantAddress: "unix://" + sock},
		{name: "tls from the context folder", context: "secure", wantAddress: "tcp://10.213.0.11:2376", wantTLS: true},
		{name: "skip verify with insecure", context: "skipverify", insecure: true, wantAddress: "tcp://10.213.0.11:2376", wantTLS: true},
		{name: "unknown", context: "nope", wantErr: []string{`read docker context "nope"`, "no such context", "docker context ls"}},
		{name: "missing socket", context: "gone", wantErr: []string{`use docker context "gone"`, "does not exist"}},
		{name: "skip verify without insecure", context: "skipverify", wantErr: []string{"skips TLS verification", "insecure = true"}},
		{name: "plain tcp off loopback", context: "plain", wantErr: []string{`docker context "plain"`, "insecure = true"}},
		{name: "unknown scheme", context: "weird", wantErr: []string{"unknown scheme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := Endpoint{HostName: "web1", Context: tt.context, DockerConfigDir: configDir, Insecure: tt.insecure}
			got, err := resolve(ep)
			if tt.wantErr != nil {
				wantErrText(t, err, append([]string{`host "web1"`}, tt.wantErr...)...)
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if got.address != tt.wantAddress || (got.tlsConfig != nil) != tt.wantTLS {
				t.Errorf("got address %q TLS %v, want %q TLS %v", got.address, got.tlsConfig != nil, tt.wantAddress, tt.wantTLS)
			}
			if tt.wantTLS && (got.tlsConfig.RootCAs == nil || len(got.tlsConfig.Certificates) != 1) {
				t.Errorf("context TLS material not loaded: %+v", got.tlsConfig)
			}
		})
	}
}

func TestResolveContextFromDockerConfigEnv(t *testing.T) {
	sock := listenUnix(t)
	configDir := t.TempDir()
	writeContext(t, configDir, "envctx", "unix://"+sock, false, nil)
	t.Setenv("DOCKER_CONFIG", configDir)
	got, err := resolve(Endpoint{HostName: "web1", Context: "envctx"})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if got.address != "unix://"+sock {
		t.Errorf("address = %q, want the context's socket", got.address)
	}
}

func TestResolveDefaultContextWithoutMeta(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	_, err := resolve(Endpoint{HostName: "web1", Context: "default", DockerConfigDir: t.TempDir()})
	// The built-in context is the local engine: either it resolves, or the
	// error is about the default socket, never about an unknown context.
	if err != nil && !strings.Contains(err.Error(), "/var/run/docker.sock") {
		t.Errorf("default context: %v", err)
	}
}

func TestResolveDefaultContextFollowsDockerHost(t *testing.T) {
	sock := listenUnix(t)
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	got, err := resolve(Endpoint{HostName: "web1", Context: "default", DockerConfigDir: t.TempDir()})
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if got.address != "unix://"+sock {
		t.Errorf("address = %q, want DOCKER_HOST's socket", got.address)
	}
}

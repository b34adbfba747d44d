package engine_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
)

// sshServer is an sshd on a loopback port, started by a test, that lets
// root in with a key made by the test. The remote side runs the docker CLI
// (`docker system dial-stdio`), which reaches the machine's default engine.
type sshServer struct {
	port     string
	identity string
	// hostKey is the server's public host key ("ssh-ed25519 AAAA…").
	hostKey string
}

// startSSHServer starts sshd, or skips the test when sshd, ssh-keygen, the
// docker CLI or root is missing: these are extras of the ssh:// test, not
// of the engine itself.
func startSSHServer(t *testing.T) sshServer {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/sshd", "ssh", "ssh-keygen", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("ssh:// test needs %s (Debian: openssh-server, openssh-client, docker.io): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("ssh:// test needs root to run sshd")
	}
	// sshd refuses to start without its privilege separation folder.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("ssh:// test cannot create /run/sshd: %v", err)
	}
	dir := t.TempDir()
	for _, key := range []string{"host_key", "client_key"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, key)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	config := strings.Join([]string{
		"Port " + port, "ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"StrictModes no", "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password", "MaxStartups 20:30:60",
	}, "\n") + "\n"
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfgPath)
	cmd.Stderr = &lockedBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() { stopSSHServer(cmd) })
	waitFor(t, "sshd to listen", 10*time.Second, func() (bool, error) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil, fmt.Errorf("%v; sshd said: %s", err, cmd.Stderr)
	})
	hostKey, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return sshServer{port: port, identity: filepath.Join(dir, "client_key"), hostKey: strings.TrimSpace(string(hostKey))}
}

// stopSSHServer ends the session processes our sshd forked (stopping sshd
// alone leaves them running), then sshd itself: only processes this test
// started, by PID.
func stopSSHServer(cmd *exec.Cmd) {
	for _, pid := range childrenOf(cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	// Let sshd reap its sessions before it goes, so none is left behind.
	for deadline := time.Now().Add(5 * time.Second); len(childrenOf(cmd.Process.Pid)) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// childrenOf lists the PIDs whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command (in parentheses) start with the
		// state and then the parent PID.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// lockedBuffer collects sshd's stderr for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// TestSSHEndpoint reaches the default engine through ssh://, in both URL
// forms, and runs more concurrent calls than the connection cap.
func TestSSHEndpoint(t *testing.T) {
	local := requireEngine(t)
	want, err := local.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	srv := startSSHServer(t)
	tests := []struct {
		name    string
		address string
	}{
		{"user and port", "ssh://root@127.0.0.1:" + srv.port},
		{"socket path", "ssh://root@127.0.0.1:" + srv.port + strings.TrimPrefix(defaultAddress(), "unix://")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "socket path" && !strings.HasPrefix(defaultAddress(), "unix://") {
				t.Skip("the default engine is not a unix socket")
			}
			eng, err := engine.Dial(t.Context(), engine.Endpoint{
				HostName: "viassh", Address: tt.address, Timeout: 15 * time.Second,
				SSH: engine.SSHOptions{IdentityFile: srv.identity, StrictHostKeyChecking: "no",
					KnownHostsFile: os.DevNull},
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer eng.Close()
			info, err := eng.Info(t.Context())
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			if info.Name != want.Name || info.ID != want.ID {
				t.Errorf("engine over ssh is %q/%q, want the default engine %q/%q", info.Name, info.ID, want.Name, want.ID)
			}
			concurrentCalls(t, eng, 12)
		})
	}
}

// concurrentCalls runs n list calls at once; the connection cap must keep
// sshd from dropping any.
func concurrentCalls(t *testing.T, eng engine.Engine, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := eng.ListContainers(ctx, engine.ListOptions{All: true})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call over ssh: %v", err)
		}
	}
}

// TestSSHHonoursKnownHosts: ssh:// checks the engine machine's host key
// against known_hosts and never prompts. A key it does not know, or one
// that changed since it was recorded, is refused before any Docker call,
// whatever StrictHostKeyChecking allows for new hosts. The control case,
// the right key, gets past the host key check (what follows, the remote
// docker CLI reaching an engine, is TestSSHEndpoint's business).
func TestSSHHonoursKnownHosts(t *testing.T) {
	srv := startSSHServer(t)
	dir := t.TempDir()
	otherKey := filepath.Join(dir, "other_host_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	other, err := os.ReadFile(otherKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hostPattern := "[127.0.0.1]:" + srv.port
	tests := []struct {
		name       string
		knownHosts string
		strict     string // StrictHostKeyChecking; "" leaves ssh's default
		refused    bool
	}{
		{name: "unknown host", knownHosts: "", refused: true},
		{name: "changed host key", knownHosts: hostPattern + " " + strings.TrimSpace(string(other)), refused: true},
		{name: "changed host key with accept-new", knownHosts: hostPattern + " " + strings.TrimSpace(string(other)), strict: "accept-new", refused: true},
		{name: "known host key", knownHosts: hostPattern + " " + srv.hostKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			knownHosts := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(knownHosts, []byte(tt.knownHosts+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			eng, err := engine.Dial(t.Context(), engine.Endpoint{
				HostName: "viassh", Address: "ssh://root@127.0.0.1:" + srv.port, Timeout: 15 * time.Second,
				SSH: engine.SSHOptions{IdentityFile: srv.identity, KnownHostsFile: knownHosts, StrictHostKeyChecking: tt.strict,
					Options: []string{"GlobalKnownHostsFile=/dev/null"}},
			})
			if err == nil {
				eng.Close()
			}
			t.Logf("Dial: %v", err)
			refused := err != nil && strings.Contains(err.Error(), "Host key verification failed")
			if refused != tt.refused {
				t.Errorf("refused = %v, want %v; err = %v", refused, tt.refused, err)
			}
			if tt.refused && !strings.Contains(err.Error(), `host "viassh"`) {
				t.Errorf("the error does not name the host: %v", err)
			}
		})
	}
}

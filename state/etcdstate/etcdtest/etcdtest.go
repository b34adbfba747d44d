package etcdtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// Binary is where Debian's etcd-server package installs etcd.
const Binary = "/usr/bin/etcd"

// Startup bounds: how long a cluster may take to become healthy, how
// often health is polled, and how many times a start is tried on new ports
// (another process may take a free port between the check and etcd's
// bind).
const (
	healthyTimeout = 30 * time.Second
	healthPoll     = 50 * time.Millisecond
	startTries     = 3
)

// Options shape a cluster.
type Options struct {
	// Members is the number of members; 0 means 3.
	Members int
	// TLS, when set, makes the members serve clients over HTTPS with
	// these files and require client certificates signed by its CA.
	TLS *TLSFiles
}

// Cluster is a running etcd cluster of real etcd processes.
type Cluster struct {
	t       testing.TB
	binary  string
	dir     string
	token   string
	tls     *TLSFiles
	members []*Member
	// initial is the --initial-cluster list.
	initial string
}

// Member is one etcd process of a Cluster.
type Member struct {
	// Name is the member's name (m0, m1, …).
	Name string
	// ClientURL is where clients reach it (http:// or https://).
	ClientURL string
	// PeerURL is where the other members reach it.
	PeerURL string
	// MetricsURL serves /health and /metrics over plain HTTP, also when
	// clients use TLS.
	MetricsURL string
	// DataDir holds its data; it survives Kill for Restart.
	DataDir string

	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	// killed is set by Kill and cleared by Restart: a dead member the
	// test killed on purpose.
	killed bool
}

// Start starts a 3-member cluster on loopback and waits until it is
// healthy. It skips the test when etcd is not installed (fails under
// CI=true).
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a cluster shaped by opts and waits until it is healthy.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	binary := requireBinary(t)
	n := opts.Members
	if n <= 0 {
		n = 3
	}
	var lastErr error
	for try := range startTries {
		c := &Cluster{t: t, binary: binary, dir: t.TempDir(), token: "dockplan-test-" + randomHex(6), tls: opts.TLS}
		err := c.start(n)
		if err == nil {
			t.Cleanup(c.stop)
			return c
		}
		c.stop()
		lastErr = err
		t.Logf("etcd cluster start %d of %d failed: %v", try+1, startTries, err)
	}
	t.Fatalf("cannot start a %d-member etcd cluster: %v", n, lastErr)
	return nil
}

// requireBinary returns the etcd binary, or skips (fails under CI=true)
// when there is none.
func requireBinary(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Binary); err == nil {
		return Binary
	}
	if path, err := exec.LookPath("etcd"); err == nil {
		return path
	}
	msg := fmt.Sprintf("etcd is not installed (%s); as root run `bash lab/install-deps.sh` (it installs Debian's etcd-server)", Binary)
	if labenv.InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// start picks ports, starts every member and waits until all are healthy.
func (c *Cluster) start(n int) error {
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	clientScheme := "http"
	if c.tls != nil {
		clientScheme = "https"
	}
	var peers []string
	for i := range n {
		m := &Member{
			Name:       fmt.Sprintf("m%d", i),
			ClientURL:  fmt.Sprintf("%s://127.0.0.1:%d", clientScheme, ports[3*i]),
			PeerURL:    fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+1]),
			MetricsURL: fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+2]),
			DataDir:    filepath.Join(c.dir, fmt.Sprintf("m%d.data", i)),
			logPath:    filepath.Join(c.dir, fmt.Sprintf("m%d.log", i)),
		}
		c.members = append(c.members, m)
		peers = append(peers, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(peers, ",")
	for _, m := range c.members {
		if err := c.run(m); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthyTimeout)
	defer cancel()
	return c.WaitHealthy(ctx)
}

// run starts m's process. The --initial-* flags only matter the first
// time: etcd ignores them when the data directory already holds a member.
func (c *Cluster) run(m *Member) error {
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--listen-metrics-urls", m.MetricsURL,
		"--initial-cluster", c.initial,
		"--initial-cluster-token", c.token,
		"--initial-cluster-state", "new",
		"--logger", "zap",
		"--log-outputs", "stderr",
	}
	if c.tls != nil {
		args = append(args, "--cert-file", c.tls.ServerCert, "--key-file", c.tls.ServerKey,
			"--trusted-ca-file", c.tls.CA, "--client-cert-auth")
	}
	logFile, err := os.OpenFile(m.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(c.binary, args...)
	cmd.Env = memberEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return nil
}

// memberEnv is the test's environment without ETCD_* variables, which
// etcd would read as flags.
func memberEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Endpoints returns every member's client URL, killed members included.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Members returns the members in start order.
func (c *Cluster) Members() []*Member { return c.members }

// PID returns member i's process ID, 0 when it is not running.
func (c *Cluster) PID(i int) int {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil || isClosed(m.exited) {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill sends SIGKILL to member i by its PID and waits until it is gone.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	m := c.members[i]
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil || isClosed(exited) {
		c.t.Fatalf("etcd member %s is not running", m.Name)
	}
	m.mu.Lock()
	m.killed = true
	m.mu.Unlock()
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		c.t.Fatalf("kill etcd member %s (PID %d): %v", m.Name, cmd.Process.Pid, err)
	}
	<-exited
}

// Restart starts killed member i again on its ports and data directory;
// it does not wait for it to be healthy (see WaitHealthy).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.members[i]
	m.mu.Lock()
	running := m.cmd != nil && !isClosed(m.exited)
	m.mu.Unlock()
	if running {
		c.t.Fatalf("etcd member %s is still running", m.Name)
	}
	if err := c.run(m); err != nil {
		c.t.Fatal(err)
	}
	m.mu.Lock()
	m.killed = false
	m.mu.Unlock()
}

// WaitHealthy waits until every running member reports itself healthy
// (it has a leader and serves reads), or fails when a member exited or ctx
// is done.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		allHealthy := true
		for _, m := range c.members {
			m.mu.Lock()
			exited, killed := m.exited, m.killed
			m.mu.Unlock()
			if killed {
				continue // killed on purpose: not ours to wait for
			}
			if exited == nil || isClosed(exited) {
				return fmt.Errorf("etcd member %s exited; its log ends:\n%s", m.Name, tail(m.logPath))
			}
			if !healthy(ctx, client, m.MetricsURL+"/health") {
				allHealthy = false
			}
		}
		if allHealthy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the etcd cluster was not healthy within the deadline (%w); member logs are in %s", ctx.Err(), c.dir)
		case <-time.After(healthPoll):
		}
	}
}

// healthy reports whether url answers {"health":"true"}.
func healthy(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil && h.Health == "true"
}

// stop kills every member; on a failed test it logs their log tails.
func (c *Cluster) stop() {
	for _, m := range c.members {
		m.mu.Lock()
		cmd, exited := m.cmd, m.exited
		m.mu.Unlock()
		if cmd == nil {
			continue
		}
		if !isClosed(exited) {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if c.t.Failed() {
			c.t.Logf("etcd member %s log (last lines):\n%s", m.Name, tail(m.logPath))
		}
	}
}

// tail returns the last lines of a log file.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

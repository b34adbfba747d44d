package probetest

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/probe"
)

// sshServer is an sshd started by a test inside a lab host's network
// namespace, letting root in with a key made by the test.
type sshServer struct {
	// addr is host:port on the lab network.
	addr string
	// identity is the client key authorized_keys holds; stranger is one it
	// does not.
	identity, stranger string
	// knownHosts holds the server's host key for addr.
	knownHosts string
}

// startSSHServer runs Debian's sshd in h's network namespace on a random
// port. Its config sets DOCKER_HOST to h's socket for every session:
// without that (or a socket path in the ssh:// URL) `docker system
// dial-stdio` on the far side would reach the machine's default engine,
// since lab hosts share the filesystem (LAB.md). It ends sshd and every
// session process it forked when the test ends.
func startSSHServer(t *testing.T, h labenv.Host) sshServer {
	t.Helper()
	requireTools(t, "/usr/sbin/sshd", "ssh", "ssh-keygen", "nsenter", "docker")
	// sshd refuses to start without its privilege separation folder.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, key := range []string{"host_key", "client_key", "stranger_key"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", filepath.Join(dir, key)).CombinedOutput()
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
	var addr string
	var sshd *exec.Cmd
	// A random port, in case an earlier run's sshd still holds one.
	for attempt := 0; sshd == nil; attempt++ {
		port := strconv.Itoa(20000 + rand.IntN(10000))
		addr = net.JoinHostPort(h.Address, port)
		var err error
		sshd, err = tryStartSSHD(t, dir, h, port)
		if err != nil && attempt == 2 {
			t.Fatal(err)
		}
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	knownHosts := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%s %s", h.Address, port, hostPub)
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return sshServer{
		addr: addr, identity: filepath.Join(dir, "client_key"), stranger: filepath.Join(dir, "stranger_key"),
		knownHosts: knownHosts,
	}
}

// tryStartSSHD starts sshd on port in h's namespace and waits until it
// listens. It returns an error (and no process) when sshd exits, for
// example because the port is taken.
func tryStartSSHD(t *testing.T, dir string, h labenv.Host, port string) (*exec.Cmd, error) {
	t.Helper()
	config := strings.Join([]string{
		"Port " + port, "ListenAddress " + h.Address,
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"SetEnv DOCKER_HOST=" + h.Socket,
		"StrictModes no", "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password", "MaxStartups 20:30:60",
	}, "\n") + "\n"
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// nsenter enters the namespace and execs sshd: the PID is sshd's.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.Netns, "--", "/usr/sbin/sshd", "-D", "-e", "-f", cfgPath)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Address, port), time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(func() { stopProcessTree(cmd.Process.Pid, exited) })
			return cmd, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("sshd on %s port %s exited: %s", h.Name, port, stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stopProcessTree(cmd.Process.Pid, exited)
			return nil, fmt.Errorf("sshd on %s port %s does not listen after 10s: %v; it said: %s", h.Name, port, err, stderr)
		}
	}
}

// stopProcessTree kills the processes pid forked (deepest first: sshd's
// session processes, which outlive a stopped sshd), then pid itself, and
// waits until exited is closed. Only this test's processes, by PID.
func stopProcessTree(pid int, exited <-chan struct{}) {
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}

// descendants lists the processes below pid, children after their
// descendants, from /proc.
func descendants(pid int) []int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command in parentheses come the state and the parent.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 {
			if ppid, err := strconv.Atoi(fields[1]); err == nil {
				parents[ppid] = append(parents[ppid], child)
			}
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range parents[p] {
			walk(c)
			out = append(out, c)
		}
	}
	walk(pid)
	return out
}

// lockedBuffer collects a process's stderr for failure messages.
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

// loadConfig decodes src as a configuration in dir.
func loadConfig(t testing.TB, dir, src string) *hclspec.Config {
	t.Helper()
	cfg, _, diags := hclspec.LoadSources(dir, map[string][]byte{"main.dockplan.hcl": []byte(src)}, hclspec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags, src)
	}
	return cfg
}

// An ssh:// host is probed through sshd on a lab host, and the probe
// reaches that lab host's engine, not the machine's default one: with the
// socket path in the URL, and with sshd setting DOCKER_HOST. A key sshd
// does not know is refused with an error naming the host block.
func TestProbeThroughSSH(t *testing.T) {
	lab := labenv.RequireHosts(t, 2)
	h := lab.Hosts[1]
	srv := startSSHServer(t, h)
	project := uniqueName(t, "probetest")
	web0 := startContainer(t, h, project+"-web-0", false, managedLabels(project, "web", 0, "hash0")...)

	socketPath := strings.TrimPrefix(h.Socket, "unix://")
	src := fmt.Sprintf(`project = %q
host "viapath" {
  address = "ssh://root@%[2]s%[3]s"
}
host "viaenv" {
  address = "ssh://root@%[2]s"
}
host "stranger" {
  address = "ssh://root@%[2]s%[3]s"
}
container "web" {
  image = %[4]q
}
`, project, srv.addr, socketPath, labenv.TestImage)
	cfg := loadConfig(t, t.TempDir(), src)
	// hclspec has no ssh settings: give the ssh client the test's keys and
	// known_hosts here, with host key checking on.
	dial := func(ctx context.Context, ep engine.Endpoint) (engine.Engine, error) {
		ep.SSH = engine.SSHOptions{IdentityFile: srv.identity, KnownHostsFile: srv.knownHosts, StrictHostKeyChecking: "yes"}
		if ep.HostName == "stranger" {
			ep.SSH.IdentityFile = srv.stranger
		}
		return engine.Dial(ctx, ep)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	snap := probe.Probe(ctx, cfg, probe.Options{Timeout: 15 * time.Second, Dial: dial})

	for _, name := range []string{"viapath", "viaenv"} {
		f := snap.Host(name)
		if !f.Reachable {
			t.Errorf("%s: unreachable: %s", name, f.Error)
			continue
		}
		if f.Engine.Name != h.Hostname || f.Engine.Labels["dockplan-lab.host"] != h.Name {
			t.Errorf("%s reached engine %q (labels %v), want %s's engine %q, not the machine's default",
				name, f.Engine.Name, f.Engine.Labels, h.Name, h.Hostname)
		}
		if len(f.Managed) != 1 || f.Managed[0].Name != web0 || f.Managed[0].State != "running" {
			t.Errorf("%s: managed = %+v, want %s running", name, f.Managed, web0)
		}
		if !f.Images[labenv.TestImage].Present {
			t.Errorf("%s: images = %+v, want %s present", name, f.Images, labenv.TestImage)
		}
	}
	f := snap.Host("stranger")
	t.Logf("stranger: %s", f.Error)
	if f.Reachable || !strings.Contains(f.Error, `host "stranger"`) || !strings.Contains(f.Error, "Permission denied") ||
		strings.Contains(f.Error, "docker.example.com") {
		t.Errorf("stranger: reachable %v, error %q; want refused, naming the host block and the ssh error", f.Reachable, f.Error)
	}
}

package probetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/lab/labenv"
)

// testCA is a certificate authority made by a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// writeCert writes the CA's certificate to path.
func (ca *testCA) writeCert(t *testing.T, path string) {
	t.Helper()
	writePEM(t, path, "CERTIFICATE", ca.cert.Raw)
}

// issue writes a certificate signed by the CA, and its key, to
// dir/name.pem and dir/name-key.pem: a server certificate for ips, or a
// client certificate when ips is empty.
func (ca *testCA) issue(t *testing.T, dir, name string, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(ips) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = ips
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsLabel is the engine label of the dockerd startTLSDaemon starts, so the
// test can tell it answered and not the lab host's own dockerd.
const tlsLabel = "dockplan-probetest"

// startTLSDaemon starts a second dockerd in h's network namespace,
// listening only on h's address port 2376 with --tlsverify, and stops it
// (by PID) and removes its folders when the test ends. It has its own data
// and exec roots, pid file and empty config file, the vfs driver, no
// iptables rules, and a bridge of its own made here: with --bridge=none
// dockerd deletes any interface called docker0 in its namespace, which is
// the lab host's bridge (seen with Docker 20.10; v28 does the same in
// removeDefaultBridgeInterface). When the test ends it checks that the lab
// host still has its docker0. It waits until a client with client (a client certificate of the
// same CA) gets an answer, and returns the tcp:// address.
func startTLSDaemon(t *testing.T, h labenv.Host, caFile string, server, client engine.TLSFiles) string {
	t.Helper()
	requireTools(t, "dockerd", "nsenter", "ip")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "-n", h.Netns, "link", "show", "docker0").CombinedOutput(); err != nil {
			t.Errorf("%s lost its docker0 bridge: %v: %s", h.Name, err, out)
		}
	})
	bridge := uniqueName(t, "dptls") // 14 bytes: interface names take 15
	ipNetns(t, h, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "-n", h.Netns, "link", "del", bridge).CombinedOutput(); err != nil {
			t.Errorf("remove bridge %s: %v: %s", bridge, err, out)
		}
	})
	ipNetns(t, h, "addr", "add", tlsBridgeCIDR, "dev", bridge)
	// Short paths: containerd's socket lives below the exec root, and unix
	// socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "dptls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeDaemonDir(t, dir) })
	cfgFile := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfgFile, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	hostPort := net.JoinHostPort(h.Address, "2376")
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.Netns, "--", "dockerd",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--config-file", cfgFile,
		"--host", "tcp://"+hostPort,
		"--tlsverify", "--tlscacert", caFile, "--tlscert", server.CertFile, "--tlskey", server.KeyFile,
		"--bridge", bridge, "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--storage-driver", "vfs",
		"--label", tlsLabel+"=tls",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Nothing inherited: a caller's DOCKER_* variables must not change it.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { stopDaemon(t, cmd.Process.Pid, exited) })

	addr := "tcp://" + hostPort
	client.CAFile = caFile
	ep := engine.Endpoint{HostName: "tls-daemon", Address: addr, Timeout: 2 * time.Second, TLS: &client}
	deadline := time.Now().Add(60 * time.Second)
	for {
		eng, err := engine.Dial(t.Context(), ep)
		if err == nil {
			eng.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("the TLS dockerd exited at start:\n%s", readTail(filepath.Join(dir, "dockerd.log")))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the TLS dockerd does not answer after 60s: %v\n%s", err, readTail(filepath.Join(dir, "dockerd.log")))
		}
	}
}

// tlsBridgeCIDR is the address of the TLS dockerd's bridge: a subnet no lab
// host uses (they have 172.30.N.1/24).
const tlsBridgeCIDR = "172.31.213.1/24"

// ipNetns runs `ip` in h's network namespace.
func ipNetns(t *testing.T, h labenv.Host, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", h.Netns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", h.Netns, strings.Join(args, " "), err, out)
	}
}

// stopDaemon ends the dockerd the test started: SIGTERM (it stops its own
// containerd), SIGKILL after 20s, then SIGKILL for whatever it had forked
// and left behind. Only processes this test started, by PID.
func stopDaemon(t *testing.T, pid int, exited <-chan struct{}) {
	children := descendants(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Logf("the TLS dockerd (pid %d) ignored SIGTERM for 20s; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
	for _, p := range children {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// removeDaemonDir unmounts whatever dockerd left mounted below dir and
// removes it.
func removeDaemonDir(t *testing.T, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		var mounts []string
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				mounts = append(mounts, f[4])
			}
		}
		slices.Sort(mounts)
		slices.Reverse(mounts) // deepest first
		for _, mp := range mounts {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", mp, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove the TLS dockerd's folder: %v", err)
	}
}

// readTail returns the last lines of a log file, for failure messages.
func readTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// `dockplan hosts` reaches a dockerd that demands TLS client certificates
// through a host block's tls block (files made by the test, relative to the
// configuration), and refuses it with a clear error naming the host block
// when the CA is wrong, or when the client certificate is not the engine's
// CA's.
func TestHostsOverTLS(t *testing.T) {
	lab := labenv.RequireHosts(t, 3)
	h := lab.Hosts[2]
	project := uniqueName(t, "probetest")
	ca, otherCA := newTestCA(t, "probetest CA"), newTestCA(t, "another CA")
	certs := t.TempDir()
	caFile, otherCAFile := filepath.Join(certs, "ca.pem"), filepath.Join(certs, "other-ca.pem")
	ca.writeCert(t, caFile)
	otherCA.writeCert(t, otherCAFile)
	serverCert, serverKey := ca.issue(t, certs, "server", net.ParseIP(h.Address))
	clientCert, clientKey := ca.issue(t, certs, "client")
	strangerCert, strangerKey := otherCA.issue(t, certs, "stranger")
	addr := startTLSDaemon(t, h, caFile,
		engine.TLSFiles{CertFile: serverCert, KeyFile: serverKey}, engine.TLSFiles{CertFile: clientCert, KeyFile: clientKey})

	block := func(name, ca, cert, key string) string {
		return fmt.Sprintf("host %q {\n  address = %q\n  tls {\n    ca_file   = %q\n    cert_file = %q\n    key_file  = %q\n  }\n}\n",
			name, addr, ca, cert, key)
	}
	dir := writeConfig(t, project,
		block("tlsgood", caFile, clientCert, clientKey),
		block("tlswrongca", otherCAFile, clientCert, clientKey),
		block("tlsstranger", caFile, strangerCert, strangerKey))
	// Relative paths are taken from the configuration's folder.
	if err := os.Symlink(certs, filepath.Join(dir, "certs")); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "main.dockplan.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	relative := strings.Replace(string(src), `ca_file   = "`+certs, `ca_file   = "certs`, 1)
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(relative), 0o644); err != nil {
		t.Fatal(err)
	}

	res := runDockplan(t, dir, nil, "hosts", "-json", "-probe-timeout", "5s")
	if res.code != 1 {
		t.Fatalf("hosts: want exit 1 (two hosts refused); got %s", res)
	}
	snap := res.snapshot(t)
	good := snap.Host("tlsgood")
	if !good.Reachable || good.Engine.Labels[tlsLabel] != "tls" {
		t.Fatalf("tlsgood: reachable %v, error %q, engine %+v; want the TLS dockerd", good.Reachable, good.Error, good.Engine)
	}
	// The test's dockerd is empty: the lab host's own engine has the image.
	if img, ok := good.Images[labenv.TestImage]; !ok || img.Present || good.AllContainers != 0 {
		t.Errorf("tlsgood: images %+v, %d containers; want the empty TLS dockerd", good.Images, good.AllContainers)
	}
	for _, tt := range []struct{ host, want string }{
		{"tlswrongca", "certificate signed by unknown authority (the engine's certificate is not signed by the CA in the tls block)"},
		{"tlsstranger", "the engine refused the client certificate"},
	} {
		f := snap.Host(tt.host)
		t.Logf("%s: %s", tt.host, f.Error)
		if f.Reachable || !strings.Contains(f.Error, `host "`+tt.host+`"`) || !strings.Contains(f.Error, tt.want) {
			t.Errorf("%s: reachable %v, error %q; want refused, naming the host block, with %q", tt.host, f.Reachable, f.Error, tt.want)
		}
	}
}

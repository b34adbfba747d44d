package probetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dockplan/dockplan/lab/labenv"
)

// Endpoints that cannot work are each reported with a clear error naming
// the host block, and the other hosts are still probed. None of them needs
// the lab or the network: each fails before any dial.
func TestHostsReportsBadEndpoints(t *testing.T) {
	dir := writeConfig(t, uniqueName(t, "probetest"), `host "badcontext" {
  context = "no-such-context"
}
host "nosocket" {
  address = "unix:///nonexistent/dockplan-probetest/docker.sock"
}
host "notls" {
  address = "tcp://127.0.0.1:2376"
  tls {
    ca_file   = "missing/ca.pem"
    cert_file = "missing/cert.pem"
    key_file  = "missing/key.pem"
  }
}
`)
	dockerConfig := t.TempDir() // no contexts at all
	res := runDockplan(t, dir, []string{"DOCKER_CONFIG=" + dockerConfig}, "hosts")
	if res.code != 1 {
		t.Fatalf("hosts: want exit 1; got %s", res)
	}
	wantContains(t, "stderr", res.stderr, "Error: 3 of 3 hosts did not answer")
	wantContains(t, "stdout", res.stdout,
		`badcontext is unreachable: host "badcontext": read docker context "no-such-context": no such context in `+
			filepath.Join(dockerConfig, "contexts"),
		`nosocket is unreachable: host "nosocket": connect to "unix:///nonexistent/dockplan-probetest/docker.sock": `+
			"socket /nonexistent/dockplan-probetest/docker.sock does not exist",
		`notls is unreachable: host "notls": connect to "tcp://127.0.0.1:2376": TLS CA file missing/ca.pem does not exist`,
	)

	res = runDockplan(t, dir, []string{"DOCKER_CONFIG=" + dockerConfig}, "hosts", "-json")
	if res.code != 1 {
		t.Fatalf("hosts -json: want exit 1; got %s", res)
	}
	for _, h := range res.snapshot(t).Hosts {
		if h.Reachable || h.Error == "" || h.Engine != nil {
			t.Errorf("%s: reachable %v error %q engine %+v; want an error and no engine", h.Name, h.Reachable, h.Error, h.Engine)
		}
	}
}

// An address with a scheme dockplan does not speak is a configuration
// error: `hosts` and `validate` exit 1 with a diagnostic naming the host
// block, and probe nothing.
func TestHostsRejectsUnknownScheme(t *testing.T) {
	dir := writeConfig(t, uniqueName(t, "probetest"), "host \"weird\" {\n  address = \"http://10.0.0.1:2375\"\n}\n")
	for _, args := range [][]string{{"hosts"}, {"hosts", "-json"}, {"validate"}} {
		res := runDockplan(t, dir, nil, args...)
		if res.code != 1 {
			t.Errorf("%v: want exit 1; got %s", args, res)
		}
		wantContains(t, "stderr", res.stderr, "Error: Invalid host address", `in host "weird"`,
			`Host "weird": the scheme "http" is not supported; use ssh://, tcp:// (with a tls block) or unix://.`)
		if args[0] == "hosts" && res.stdout != "" {
			t.Errorf("%v printed a table for an invalid configuration:\n%s", args, res.stdout)
		}
	}
}

// A host block naming a docker context reaches the engine the context
// points at: here a lab host's unix socket.
func TestHostsThroughDockerContext(t *testing.T) {
	lab := labenv.Require(t)
	h := lab.Hosts[0]
	dockerConfig := t.TempDir()
	const name = "probetest-lab"
	meta := map[string]any{"Name": name, "Metadata": map[string]any{},
		"Endpoints": map[string]any{"docker": map[string]any{"Host": h.Socket, "SkipTLSVerify": false}}}
	data, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(name))
	metaDir := filepath.Join(dockerConfig, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(metaDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(metaDir, "meta.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := writeConfig(t, uniqueName(t, "probetest"), "host \"viacontext\" {\n  context = \""+name+"\"\n}\n")
	res := runDockplan(t, dir, []string{"DOCKER_CONFIG=" + dockerConfig}, "hosts", "-json")
	if res.code != 0 {
		t.Fatalf("hosts: %s", res)
	}
	f := res.snapshot(t).Host("viacontext")
	if !f.Reachable || f.Engine.Name != h.Hostname || f.Address != "context "+name {
		t.Errorf("viacontext: reachable %v address %q engine %+v error %q; want %s through the context",
			f.Reachable, f.Address, f.Engine, f.Error, h.Hostname)
	}
}

// Package e2e runs the real dockplan binary against the real lab: several
// dockerd hosts in network namespaces (go run ./lab up 3). Each test uses
// its own project name and removes what it made.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/state"
)

// binary is the dockplan binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dockplan-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dockplan")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dockplan:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// project is one test's copy of a configuration in its own folder.
type project struct {
	t    *testing.T
	dir  string
	name string
	lab  *labenv.Lab
}

// threeTier copies examples/three-tier under a unique project name, with
// the lab's hosts as node1..node3.
func threeTier(t *testing.T, l *labenv.Lab) *project {
	name := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1_000_000_000)
	p := &project{t: t, dir: t.TempDir(), name: name, lab: l}
	files, err := filepath.Glob("../examples/three-tier/*.dockplan.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := strings.Replace(string(b), `project = "three-tier"`, fmt.Sprintf("project = %q", name), 1)
		if err := os.WriteFile(filepath.Join(p.dir, filepath.Base(f)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(p.cleanup)
	return p
}

func (p *project) vars() []string {
	var out []string
	for i, h := range p.lab.Hosts[:3] {
		out = append(out, "-var", fmt.Sprintf("node%d_address=%s", i+1, h.TCPAddress))
	}
	return out
}

// run runs dockplan in the project folder and returns its output and exit
// code.
func (p *project) run(args ...string) (string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"-chdir=" + p.dir}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("dockplan %v: %v", args, err)
	}
	return out.String(), code
}

func (p *project) mustRun(args ...string) string {
	p.t.Helper()
	out, code := p.run(args...)
	if code != 0 {
		p.t.Fatalf("dockplan %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (p *project) state() *state.State {
	p.t.Helper()
	st, err := state.Read(filepath.Join(p.dir, state.DefaultPath))
	if err != nil || st == nil {
		p.t.Fatalf("state: %v", err)
	}
	return st
}

// cleanup destroys whatever the test left, then removes any container of
// the project that is still on a lab host.
func (p *project) cleanup() {
	args := append([]string{"-chdir=" + p.dir, "destroy", "-auto-approve"}, p.vars()...)
	_ = exec.Command(binary, args...).Run()
	for _, h := range p.lab.Hosts {
		out, _ := exec.Command("docker", "-H", h.Socket, "ps", "-aq", "--filter", "label=dockplan.project="+p.name).Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command("docker", "-H", h.Socket, "rm", "-f", id).Run()
		}
	}
}

// containers lists the project's containers on every lab host by name.
func (p *project) containers() map[string]string {
	out := map[string]string{}
	for _, h := range p.lab.Hosts {
		b, err := exec.Command("docker", "-H", h.Socket, "ps", "-a", "--format", "{{.Names}}", "--filter", "label=dockplan.project="+p.name).Output()
		if err != nil {
			p.t.Fatalf("docker ps on %s: %v", h.Name, err)
		}
		for _, n := range strings.Fields(string(b)) {
			out[n] = h.Name
		}
	}
	return out
}

// dial asks an instance's testapp to reach addr, as a proof that a link
// works across hosts.
func (p *project) dial(hostIP string, port int, addr string) (bool, string) {
	client := http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("http://%s:%d/dial?addr=%s", hostIP, port, addr))
		if err == nil {
			var res struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if res.OK || time.Now().After(deadline) {
				return res.OK, res.Error
			}
		} else if time.Now().After(deadline) {
			return false, err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
)

// TestThreeTierLifecycle applies the three-tier example to three lab
// hosts, checks a cross-host link works, re-plans to "No changes", changes
// the api image (replace), lowers its count (deletes), and destroys it.
func TestThreeTierLifecycle(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := threeTier(t, l)
	vars := p.vars()

	out, code := p.run(append([]string{"plan", "-detailed-exitcode"}, vars...)...)
	if code != 2 || !strings.Contains(out, "Plan: 6 to create") {
		t.Fatalf("first plan exited %d:\n%s", code, out)
	}
	out = p.mustRun(append([]string{"apply", "-auto-approve"}, vars...)...)
	if !strings.Contains(out, "Apply complete! 6 created") {
		t.Fatalf("apply output:\n%s", out)
	}
	st := p.state()
	hosts := map[string]bool{}
	for i := range 3 {
		hosts[st.Instances[fmt.Sprintf("api[%d]", i)].Host] = true
	}
	if len(hosts) != 3 || st.Instances["db"].Host != "node1" {
		t.Errorf("placement: api on %v, db on %s", hosts, st.Instances["db"].Host)
	}
	checkLink(t, p, st)
	checkOutputs(t, p, st, out, vars)

	out, code = p.run(append([]string{"plan", "-detailed-exitcode"}, vars...)...)
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("re-plan after apply exited %d:\n%s", code, out)
	}

	replaceAPIImage(t, p)
	out = p.mustRun(append([]string{"apply", "-auto-approve"}, vars...)...)
	// api's three instances get the new image; web's two follow because
	// the api addresses they link to change (Docker picks new ports).
	if !strings.Contains(out, "5 replaced") {
		t.Fatalf("image change apply:\n%s", out)
	}
	for name := range p.containers() {
		if strings.HasSuffix(name, "-dockplan-next") {
			t.Errorf("temporary container left behind: %s", name)
		}
	}
	if out, code := p.run(append([]string{"plan", "-detailed-exitcode"}, vars...)...); code != 0 {
		t.Fatalf("not converged after replace (%d):\n%s", code, out)
	}

	out = p.mustRun(append([]string{"apply", "-auto-approve", "-var", "api_replicas=1"}, vars...)...)
	if !strings.Contains(out, "2 deleted") {
		t.Fatalf("count 3 → 1:\n%s", out)
	}
	got := p.containers()
	if _, ok := got[p.name+"-api-2"]; ok {
		t.Errorf("api[2] still runs: %v", got)
	}

	p.mustRun(append([]string{"destroy", "-auto-approve", "-var", "api_replicas=1"}, vars...)...)
	if left := p.containers(); len(left) != 0 {
		t.Errorf("containers left after destroy: %v", left)
	}
	if n := len(p.state().Instances); n != 0 {
		t.Errorf("state has %d instances after destroy", n)
	}
}

// checkLink asks api[0]'s testapp to reach db through the DB_ADDR dockplan
// injected: a real cross-host connection through a published port.
func checkLink(t *testing.T, p *project, st *state.State) {
	t.Helper()
	api := st.Instances["api[0]"]
	dbAddr := ""
	for _, kv := range api.Spec.Env {
		if v, ok := strings.CutPrefix(kv, "DB_ADDR="); ok {
			dbAddr = v
		}
	}
	if dbAddr == "" {
		t.Fatalf("api[0] has no DB_ADDR: %v", api.Spec.Env)
	}
	var port int
	for _, pb := range api.Ports {
		if pb.ContainerPort == 8080 {
			port = pb.HostPort
		}
	}
	h, err := p.lab.Host(hostIndex(api.Host))
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := p.dial(h.Address, port, dbAddr); !ok {
		t.Fatalf("api[0] on %s cannot reach db at %s: %s", api.Host, dbAddr, why)
	}
}

// hostIndex maps node1 to the lab's host1.
func hostIndex(node string) string { return strings.TrimPrefix(node, "node") }

// replaceAPIImage points api at another tag of the test image.
func replaceAPIImage(t *testing.T, p *project) {
	t.Helper()
	if out, err := exec.Command("docker", "tag", labenv.TestImage, "dockplan-testapp:e2e-next").CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v %s", err, out)
	}
	path := filepath.Join(p.dir, "app.dockplan.hcl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i := strings.Index(src, `container "api"`)
	j := i + strings.Index(src[i:], "local.image")
	src = src[:j] + `"dockplan-testapp:e2e-next"` + src[j+len("local.image"):]
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecondApplyReportsTheHolder holds the state lock as another apply
// would, and checks that apply fails at once naming the holder.
func TestSecondApplyReportsTheHolder(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := threeTier(t, l)
	b := state.NewFile(filepath.Join(p.dir, state.DefaultPath))
	info := state.NewLockInfo("apply")
	id, err := b.Lock(t.Context(), info)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Unlock(context.WithoutCancel(t.Context()), id)
	out, code := p.run(append([]string{"apply", "-auto-approve", "-lock-timeout", "1s"}, p.vars()...)...)
	if code != 1 || !strings.Contains(out, id) || !strings.Contains(out, "apply") {
		t.Fatalf("second apply exited %d, want 1 naming lock %s:\n%s", code, id, out)
	}
	if n := len(p.containers()); n != 0 {
		t.Errorf("the refused apply created %d containers", n)
	}
}

// TestUnhealthyDependencySkipsDependents: a health check that never passes
// fails the step waiting for it, skips what depends on it, and shows the
// last health check output.
func TestUnhealthyDependencySkipsDependents(t *testing.T) {
	l := labenv.RequireHosts(t, 2)
	name := fmt.Sprintf("e2eh%d", time.Now().UnixNano()%1_000_000_000)
	p := &project{t: t, dir: t.TempDir(), name: name, lab: l}
	t.Cleanup(p.cleanup)
	src := fmt.Sprintf("project = %q\n", name) + l.Hosts[0].HostBlock(labenv.HostBlockOptions{}) + l.Hosts[1].HostBlock(labenv.HostBlockOptions{}) + `
container "db" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  health {
    command  = ["CMD", "/testapp", "-healthcheck", "-no-such-flag"]
    interval = "1s"
    timeout  = "1s"
    retries  = 1
  }
}
container "api" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  link "db" {}
}
container "other" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
}
`
	if err := os.WriteFile(filepath.Join(p.dir, "main.dockplan.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := p.run("apply", "-auto-approve")
	if code != 1 || !strings.Contains(out, "waiting for db") || !strings.Contains(out, "last health check") {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	st := p.state()
	if st.Instances["api"] != nil || st.Instances["other"] == nil || st.Instances["db"] == nil {
		t.Errorf("state has %v; want db and other, not api", st.Addresses())
	}
}

// checkOutputs: apply's output ends with the outputs, and dockplan output
// gives db's address as the state records it.
func checkOutputs(t *testing.T, p *project, st *state.State, applyOut string, vars []string) {
	t.Helper()
	db := st.Instances["db"]
	want := fmt.Sprintf("%s:%d", db.HostAddress, planner.PortsOf(db.Ports)["5432"])
	if !strings.Contains(applyOut, "\nOutputs:\n") || !strings.Contains(applyOut, `db_address    = "`+want+`"`) {
		t.Errorf("apply did not print the outputs with db_address %s:\n%s", want, applyOut)
	}
	if got := strings.TrimSpace(p.mustRun(append([]string{"output", "-raw", "db_address"}, vars...)...)); got != want {
		t.Errorf("dockplan output -raw db_address = %q, want %q", got, want)
	}
	out := p.mustRun(append([]string{"output", "-json"}, vars...)...)
	var outs map[string]struct {
		Known bool            `json:"known"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(out), &outs); err != nil || !outs["web_urls"].Known || !outs["api_instances"].Known {
		t.Errorf("dockplan output -json: %v\n%s", err, out)
	}
}

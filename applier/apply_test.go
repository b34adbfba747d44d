package applier_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockplan/dockplan/applier"
	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

const shop = `
project = "shop"
host "node1" {
  address        = "unix:///n1.sock"
  public_address = "10.0.0.1"
  labels         = { disk = "ssd" }
}
host "node2" {
  address        = "unix:///n2.sock"
  public_address = "10.0.0.2"
}
host "node3" {
  address        = "unix:///n3.sock"
  public_address = "10.0.0.3"
}
variable "tag" { default = "1" }
container "db" {
  image = "postgres:16"
  ports = ["5432:5432"]
  resources {
    cpu    = 1
    memory = "1GiB"
  }
  placement {
    labels = { disk = "ssd" }
  }
  health {
    command = ["CMD", "pg_isready"]
  }
}
container "api" {
  image = "shop/api:${var.tag}"
  count = 3
  ports = ["8080"]
  resources {
    cpu    = 0.5
    memory = "256MiB"
  }
  link "db" {}
  env = { DATABASE_URL = "postgres://app@${container.db.address}/shop" }
}
container "web" {
  image = "shop/web:1"
  count = 2
  ports = ["80:8080"]
  link "api" {
    alias = "backend"
  }
}
`

// lab is three fake engines and what an apply needs to use them.
type lab struct {
	t     *testing.T
	cfg   *hclspec.Config
	fakes map[string]*enginefake.Fake
	st    *state.State
	saves int
	mu    sync.Mutex
}

func newLab(t *testing.T, src string) *lab {
	cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"m.dockplan.hcl": []byte(src)}, hclspec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	l := &lab{t: t, cfg: cfg, fakes: map[string]*enginefake.Fake{}, st: state.New(cfg.Project, "00000000-0000-4000-8000-000000000001")}
	for _, h := range cfg.Hosts {
		l.fakes[h.Name] = enginefake.New(h.Name)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go l.healer(ctx)
	return l
}

// healer plays the health checks: every container that is starting
// becomes healthy shortly after.
func (l *lab) healer(ctx context.Context) {
	for ctx.Err() == nil {
		for _, f := range l.fakes {
			for _, c := range f.Containers() {
				if c.Health == engine.HealthStarting {
					f.SetHealth(c.ID, engine.HealthHealthy)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *lab) dial(ctx context.Context, ep engine.Endpoint) (engine.Engine, error) {
	f := l.fakes[ep.HostName]
	if _, err := f.Info(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func (l *lab) plan() (*planner.Plan, *probe.Snapshot) {
	l.t.Helper()
	snap := probe.Probe(l.t.Context(), l.cfg, probe.Options{Dial: l.dial})
	p, err := planner.Make(l.cfg, snap, l.st, planner.Options{Refreshed: true})
	if err != nil {
		l.t.Fatal(err)
	}
	return p, snap
}

func (l *lab) apply(p *planner.Plan, snap *probe.Snapshot) *applier.Result {
	engines := map[string]engine.Engine{}
	addrs := map[string]string{}
	for name, f := range l.fakes {
		engines[name] = f
		addrs[name] = snap.Host(name).ReachAddress
	}
	return applier.Apply(l.t.Context(), l.cfg, p, l.st, applier.Options{
		Engines: engines, HostAddress: addrs, HealthTimeout: 5 * time.Second,
		Save: func(_ context.Context, st *state.State) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.saves++
			if _, err := st.Encode(); err != nil {
				return err
			}
			return nil
		},
	})
}

func (l *lab) addImages(refs ...string) {
	for _, f := range l.fakes {
		f.AddImage(refs...)
	}
}

func TestApplyThenNoChanges(t *testing.T) {
	l := newLab(t, shop)
	l.addImages("postgres:16", "shop/api:1", "shop/web:1")
	p, snap := l.plan()
	res := l.apply(p, snap)
	if res.Err != nil {
		t.Fatalf("apply: %v", res.Err)
	}
	if res.Counts.Create != 6 || len(l.st.Instances) != 6 || l.saves < 6 || l.st.Serial != int64(l.saves) {
		t.Fatalf("counts %+v, %d instances, %d saves, serial %d", res.Counts, len(l.st.Instances), l.saves, l.st.Serial)
	}
	api := l.st.Instances["api[0]"]
	dbHost := l.st.Instances["db"].Host
	want := "DATABASE_URL=postgres://app@" + map[string]string{"node1": "10.0.0.1"}[dbHost] + ":5432/shop"
	if !contains(api.Spec.Env, want) || !contains(api.Spec.Env, "DB_ADDR=10.0.0.1:5432") {
		t.Errorf("api env = %v, want %s", api.Spec.Env, want)
	}
	web := l.st.Instances["web[0]"]
	if !strings.Contains(strings.Join(web.Spec.Env, " "), "BACKEND_ADDRS=10.0.0.") {
		t.Errorf("web env = %v", web.Spec.Env)
	}
	p2, _ := l.plan()
	if p2.Changes() {
		t.Fatalf("re-plan after apply has changes: %+v", p2.Summary)
	}
}

func TestApplyPullsAndReplaces(t *testing.T) {
	l := newLab(t, shop)
	l.addImages("postgres:16", "shop/api:1", "shop/web:1")
	p, snap := l.plan()
	if res := l.apply(p, snap); res.Err != nil {
		t.Fatal(res.Err)
	}
	l.cfg, _, _ = hclspec.LoadSources(".", map[string][]byte{"m.dockplan.hcl": []byte(strings.Replace(shop, `default = "1"`, `default = "2"`, 1))}, hclspec.LoadOptions{})
	l.addImages("shop/api:2") // a pull from a registry is not what this test is about
	p, snap = l.plan()
	if p.Summary.Replace != 5 {
		t.Fatalf("summary %+v", p.Summary)
	}
	if res := l.apply(p, snap); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, f := range l.fakes {
		for _, c := range f.Containers() {
			if strings.HasSuffix(c.Name, "-dockplan-next") {
				t.Errorf("temporary container left: %s", c.Name)
			}
		}
	}
	if p2, _ := l.plan(); p2.Changes() {
		t.Fatalf("not converged: %+v", p2.Summary)
	}
}

func TestFailureSkipsOnlyDependents(t *testing.T) {
	l := newLab(t, shop)
	l.addImages("postgres:16", "shop/api:1", "shop/web:1")
	p, snap := l.plan()
	boom := errors.New("disk on fire")
	l.fakes["node2"].Fail(enginefake.MethodCreateContainer, engine.NewError("node2", "create container", "", nil, boom))
	res := l.apply(p, snap)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "disk on fire") {
		t.Fatalf("err = %v", res.Err)
	}
	for _, id := range res.Failed {
		if !strings.Contains(id, "api") && !strings.Contains(id, "web") {
			t.Errorf("unexpected failure %s", id)
		}
	}
	if len(res.Skipped) == 0 || len(res.Done) == 0 {
		t.Fatalf("done %v failed %v skipped %v", res.Done, res.Failed, res.Skipped)
	}
	for _, id := range res.Done {
		if s := l.st.Instances[strings.TrimPrefix(id, "create ")]; s == nil {
			t.Errorf("%s done but not in the state", id)
		}
	}
	l.fakes["node2"].ClearFailures()
	p2, snap2 := l.plan()
	if res := l.apply(p2, snap2); res.Err != nil {
		t.Fatal(res.Err)
	}
	if p3, _ := l.plan(); p3.Changes() {
		t.Fatalf("not converged: %+v", p3.Summary)
	}
}

func TestSaveFailureStopsNewSteps(t *testing.T) {
	l := newLab(t, shop)
	l.addImages("postgres:16", "shop/api:1", "shop/web:1")
	p, _ := l.plan()
	engines := map[string]engine.Engine{}
	for name, f := range l.fakes {
		engines[name] = f
	}
	res := applier.Apply(t.Context(), l.cfg, p, l.st, applier.Options{Engines: engines, HostAddress: map[string]string{"node1": "10.0.0.1", "node2": "10.0.0.2", "node3": "10.0.0.3"},
		Save: func(context.Context, *state.State) error { return errors.New("no space left on device") }})
	if res.SaveErr == nil || len(res.Skipped) == 0 {
		t.Fatalf("save error %v, skipped %v", res.SaveErr, res.Skipped)
	}
	// What was created is still recorded in memory, for the caller to report.
	if len(l.st.Instances) == 0 {
		t.Fatal("the created container was not recorded")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCreateRemovesStrayFromLostCreate: a container that appeared after
// the probe under an instance's name with its labels, recorded nowhere
// (what a create whose answer was lost leaves when the request reaches
// the engine late), is removed and the create goes ahead. A container
// holding the name that is not such a stray makes the create fail.
func TestCreateRemovesStrayFromLostCreate(t *testing.T) {
	l := newLab(t, shop)
	l.addImages("postgres:16", "shop/api:1", "shop/web:1")
	p, snap := l.plan()
	hostOf := map[string]string{}
	for _, s := range p.Steps {
		hostOf[s.Address] = s.Host
	}
	labels := func(project, ct, idx string) map[string]string {
		return map[string]string{planner.LabelProject: project, planner.LabelContainer: ct, planner.LabelIndex: idx}
	}
	stray := l.fakes[hostOf["web[0]"]].AddContainer(engine.ContainerSpec{Name: "shop-web-0", Image: "shop/web:1", Labels: labels("shop", "web", "0")}, engine.StateCreated)
	l.fakes[hostOf["web[1]"]].AddContainer(engine.ContainerSpec{Name: "shop-web-1", Image: "shop/web:1", Labels: labels("other", "web", "1")}, engine.StateCreated)
	res := l.apply(p, snap)
	if res.Err == nil || !strings.Contains(res.Err.Error(), `"shop-web-1"`) || !errors.Is(res.Err, engine.ErrConflict) {
		t.Fatalf("apply error = %v, want a name conflict on shop-web-1 only", res.Err)
	}
	if strings.Contains(res.Err.Error(), "shop-web-0") {
		t.Errorf("web[0]'s stray was not cleared: %v", res.Err)
	}
	web0 := l.st.Instances["web[0]"]
	if web0 == nil || web0.ContainerID == stray {
		t.Fatalf("web[0] in state = %+v, want a new container (stray was %s)", web0, stray)
	}
	for _, c := range l.fakes[hostOf["web[0]"]].Containers() {
		if c.ID == stray {
			t.Errorf("the stray container %s is still there", stray)
		}
	}
	if l.st.Instances["web[1]"] != nil {
		t.Errorf("web[1] recorded although its name belongs to another project's container")
	}
}

// TestSaveFailureStartsNoQueuedStep: a step that waited for a slot while
// a save failed does not start, and the serial stays the stored one.
func TestSaveFailureStartsNoQueuedStep(t *testing.T) {
	l := newLab(t, `
project = "shop"
host "node1" {
  address        = "unix:///n1.sock"
  public_address = "10.0.0.1"
}
container "worker" {
  image = "shop/worker:1"
  count = 4
}
`)
	l.addImages("shop/worker:1")
	p, _ := l.plan()
	engines := map[string]engine.Engine{}
	for name, f := range l.fakes {
		engines[name] = f
	}
	var mu sync.Mutex
	var started []string
	res := applier.Apply(t.Context(), l.cfg, p, l.st, applier.Options{Engines: engines, Parallelism: 1,
		HostAddress: map[string]string{"node1": "10.0.0.1"},
		Save:        func(context.Context, *state.State) error { return errors.New("no space left on device") },
		OnEvent: func(e applier.Event) {
			if e.Phase == applier.Started {
				mu.Lock()
				started = append(started, e.StepID)
				mu.Unlock()
			}
		}})
	if len(started) != 1 || len(res.Failed) != 1 || len(res.Done) != 0 || len(res.Skipped) != len(p.Steps)-1 {
		t.Fatalf("started %v, done %v, failed %v, skipped %v; want one step started (and failed on its save), every other skipped",
			started, res.Done, res.Failed, res.Skipped)
	}
	if l.st.Serial != 0 {
		t.Errorf("serial %d after failed saves, want 0 (nothing was stored)", l.st.Serial)
	}
}

// TestStepErrorsHideSecrets: a step error that quotes a sensitive value
// (as a health check's output may) shows it neither in the failed event
// nor in the result's error.
func TestStepErrorsHideSecrets(t *testing.T) {
	const secret = "CANARY-s3cr3t-7f2a"
	l := newLab(t, shop+`
variable "token" {
  type      = string
  sensitive = true
  default   = "`+secret+`"
}
container "worker" {
  image = "shop/web:1"
  env   = { AUTH = "Bearer ${var.token}" }
}
`)
	l.addImages("postgres:16", "shop/api:1", "shop/web:1")
	p, snap := l.plan()
	for _, f := range l.fakes {
		f.Fail(enginefake.MethodCreateContainer, errors.New("the engine says: token "+secret+" is bad, header Bearer "+secret))
	}
	res := l.apply(p, snap)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "header (sensitive value)") {
		t.Fatalf("apply error = %v, want the header hidden as a whole", res.Err)
	}
	if strings.Contains(res.Err.Error(), "s3cr3t") {
		t.Errorf("the apply error shows the secret: %v", res.Err)
	}
}

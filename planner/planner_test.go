package planner_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name + ".golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./planner -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func planJSON(t *testing.T, p *planner.Plan) []byte {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func actions(p *planner.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.ID+" @"+s.Host)
	}
	return out
}

const shop = `
project = "shop"
host "node1" {
  address = "unix:///n1.sock"
  labels  = { disk = "ssd" }
}
host "node2" {
  address = "unix:///n2.sock"
}
host "node3" {
  address = "unix:///n3.sock"
  capacity {
    cpu    = 1
    memory = "1GiB"
  }
}
variable "tag" { default = "1" }
variable "replicas" { default = 3 }
variable "pw" {
  sensitive = true
  default   = "canary-s3cret"
}
container "db" {
  image = "postgres:16"
  ports = ["5432:5432"]
  env   = { POSTGRES_PASSWORD = var.pw }
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
  count = var.replicas
  ports = ["8080"]
  resources {
    cpu    = 0.5
    memory = "256MiB"
  }
  link "db" {}
  env = { DATABASE_URL = "postgres://app@${container.db.address}/shop" }
  placement {
    distinct_hosts = true
  }
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

func TestPlanFromNothing(t *testing.T) {
	s := newSim(t, load(t, shop))
	p := s.plan()
	// Spread: db (1 CPU, 1GiB) must go to the ssd host node1; api[0] takes
	// the emptiest host node2; api[1] then scores 0.73 on node1 against
	// 0.625 on the small node3; distinct_hosts sends api[2] to node3.
	want := []string{"create db @node1", "create api[0] @node2", "create api[1] @node1", "create api[2] @node3",
		"create web[0] @node2", "create web[1] @node1"}
	if diff := cmp.Diff(want, actions(p)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	golden(t, "shop_create.json", planJSON(t, p))
	if strings.Contains(string(planJSON(t, p)), "canary-s3cret") {
		t.Fatal("the plan JSON shows a sensitive value")
	}
	api0 := p.Steps[1]
	if diff := cmp.Diff([]string{"create db"}, api0.DependsOn); diff != "" {
		t.Errorf("api[0] depends on (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"db"}, api0.WaitHealthy); diff != "" {
		t.Errorf("api[0] waits for (-want +got):\n%s", diff)
	}
}

func TestReplanAfterApplyIsEmpty(t *testing.T) {
	s := newSim(t, load(t, shop))
	s.apply(s.plan())
	if p := s.plan(); p.Changes() {
		t.Fatalf("re-plan after apply has changes: %v", actions(p))
	}
}

func TestActions(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *sim)
		want   []string
	}{
		{name: "image change replaces, then dependents whose link address changes", change: func(s *sim) {
			s.cfg = load(s.t, strings.Replace(shop, `default = "1" }`, `default = "2" }`, 1))
		}, want: []string{"pull node1 shop/api:2 @node1", "pull node2 shop/api:2 @node2", "pull node3 shop/api:2 @node3",
			"replace api[0] @node2", "replace api[1] @node1", "replace api[2] @node3",
			"replace web[0] @node2", "replace web[1] @node1"}},
		{name: "resources change updates in place", change: func(s *sim) {
			s.cfg = load(s.t, strings.Replace(shop, `memory = "256MiB"`, `memory = "300MiB"`, 1))
		}, want: []string{"update api[0] @node2", "update api[1] @node1", "update api[2] @node3"}},
		{name: "count lowered deletes highest first", change: func(s *sim) {
			s.cfg = load(s.t, strings.Replace(shop, `default = 3 }`, `default = 1 }`, 1))
		}, want: []string{"replace web[0] @node2", "replace web[1] @node1", "delete api[2] node3 @node3", "delete api[1] node1 @node1"}},
		{name: "stopped container is started", change: func(s *sim) {
			s.find("node2", "shop-web-0").State = "exited"
			recount(s.snap)
		}, want: []string{"start web[0] @node2"}},
		{name: "vanished container is re-created in place", change: func(s *sim) {
			s.remove("node1", "shop-api-1")
			recount(s.snap)
		}, want: []string{"create api[1] @node1", "replace web[0] @node2", "replace web[1] @node1"}},
		{name: "orphan is deleted", change: func(s *sim) {
			hf := s.snap.Host("node2")
			orphan := hf.Managed[0]
			orphan.ID, orphan.Name, orphan.Container = "orphan1", "shop-old-0", "old"
			hf.Managed = append(hf.Managed, orphan)
			recount(s.snap)
		}, want: []string{"delete shop-old-0 node2 @node2"}},
		{name: "unknown container with our labels is adopted", change: func(s *sim) {
			delete(s.st.Instances, "web[1]")
		}, want: []string{"adopt web[1] @node1"}},
		{name: "created-not-started container of a killed apply is started", change: func(s *sim) {
			delete(s.st.Instances, "web[1]")
			m := s.find("node1", "shop-web-1")
			m.State, m.Resources.MilliCPU, m.Resources.MemoryBytes = "created", 0, 0
			recount(s.snap)
		}, want: []string{"start web[1] @node1"}},
		{name: "label constraint moves instances", change: func(s *sim) {
			s.cfg = load(s.t, strings.Replace(shop, `image = "shop/web:1"`, "image = \"shop/web:1\"\n  placement {\n    hosts = [\"node2\", \"node3\"]\n  }", 1))
		}, want: []string{"move web[1] @node3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, load(t, shop))
			s.apply(s.plan())
			tt.change(s)
			p := s.plan()
			if diff := cmp.Diff(tt.want, actions(p)); diff != "" {
				t.Fatalf("steps (-want +got):\n%s", diff)
			}
			golden(t, "action_"+strings.ReplaceAll(strings.Fields(tt.name)[0]+"_"+strings.Fields(tt.name)[1], " ", "_")+".json", planJSON(t, p))
			s.apply(p)
			if p2 := s.plan(); p2.Changes() {
				t.Fatalf("not converged after applying: %v", actions(p2))
			}
		})
	}
}

func TestPlaceErrorListsEveryHost(t *testing.T) {
	cfg := load(t, strings.Replace(shop, `memory = "1GiB"
  }
  placement {`, `memory = "9GiB"
  }
  placement {`, 1))
	s := newSim(t, cfg)
	s.snap.Host("node2").Reachable = false
	_, err := planner.Make(cfg, s.snap, s.st, planner.Options{Refreshed: true})
	for _, want := range []string{
		"api[2]: no host fits: node1 distinct_hosts (api[",
		"db: no host fits: node1 memory (needs 9GiB, 8GiB free); node2 labels (disk=ssd), unreachable; node3 labels (disk=ssd), memory (needs 9GiB, 1GiB free)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
}

func TestOfflinePlan(t *testing.T) {
	cfg := load(t, shop)
	s := newSim(t, cfg)
	s.apply(s.plan())
	p, err := planner.Make(cfg, planner.OfflineSnapshot(cfg, s.st), s.st, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes() || p.Refreshed {
		t.Fatalf("offline re-plan: changes %v refreshed %v warnings %v", actions(p), p.Refreshed, p.Warnings)
	}
	// A new instance cannot go to a host without a capacity block.
	cfg2 := load(t, strings.Replace(shop, `default = 3 }`, `default = 4 }`, 1))
	_, err = planner.Make(cfg2, planner.OfflineSnapshot(cfg2, s.st), s.st, planner.Options{})
	if err == nil || !strings.Contains(err.Error(), "capacity unknown") {
		t.Fatalf("err = %v", err)
	}
}

func TestStaleness(t *testing.T) {
	cfg := load(t, shop)
	s := newSim(t, cfg)
	s.apply(s.plan())
	p := s.plan()
	if got := planner.Staleness(p, s.st.Lineage, s.st.Serial, s.snap); len(got) != 0 {
		t.Fatalf("fresh plan is stale: %v", got)
	}
	s.find("node1", "shop-api-1").ID = "recreated"
	s.remove("node2", "shop-web-0")
	s.snap.Host("node3").Capacity.MilliCPU = 500
	got := planner.Staleness(p, s.st.Lineage, s.st.Serial+1, s.snap)
	want := []string{"state serial 1 → 2 (another apply ran since)", "node1: shop-api-1 was re-created outside dockplan",
		"node2: shop-web-0 was removed outside dockplan", "node3: capacity changed (cpu 1000 → 500 millicores, memory 1073741824 → 1073741824 bytes)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("staleness (-want +got):\n%s", diff)
	}
}

func TestDeterministic(t *testing.T) {
	cfg := load(t, shop)
	s := newSim(t, cfg)
	first := planJSON(t, s.plan())
	for range 20 {
		cfg := load(t, shop)
		p, err := planner.Make(cfg, snapshotOf(cfg), state.New(cfg.Project, testLineage), planner.Options{Refreshed: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := planJSON(t, p); string(got) != string(first) {
			t.Fatalf("plans differ between runs")
		}
	}
}

func TestSavedPlanRoundTrip(t *testing.T) {
	cfg := load(t, shop)
	p := newSim(t, cfg).plan()
	sp, err := planner.NewSavedPlan(p, cfg, []string{"DOCKER_HOST=unix:///x.sock", "HOME=/root"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := sp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := planner.ParseSavedPlan("x.plan", data)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := back.Values()
	if err != nil {
		t.Fatal(err)
	}
	cfg2, _, diags := hclspec.LoadSources(".", back.Sources(), hclspec.LoadOptions{Values: vals, Environ: back.Environ})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if v := cfg2.Variable("pw"); v.Source != "saved plan" || !v.Value.HasMark(hclspec.Sensitive) {
		t.Errorf("pw = %#v from %s", v.Value, v.Source)
	}
	tests := []struct {
		name string
		data []byte
		want string
		// notPlan: the file is no plan at all, so the message must not
		// advise writing a plan over it.
		notPlan bool
	}{
		{name: "truncated", data: data[:len(data)/2], want: "truncated (unexpected EOF)"},
		{name: "tampered", data: []byte(strings.Replace(string(data), `"create"`, `"delete"`, 1)), want: "checksum"},
		{name: "data appended", data: append(append([]byte{}, data...), "{}"...), want: "more after the plan"},
		// Edited and sealed again with a matching checksum: the shape the
		// applier relies on is checked too.
		{name: "null step, sealed", data: seal([]byte(strings.Replace(string(data), `"steps": [`, `"steps": [null,`, 1))), want: "step 0 is null"},
		{name: "repeated step, sealed", data: resealPlan(t, data, func(p *planner.Plan) { p.Steps = append(p.Steps, p.Steps[0]) }), want: "appears twice"},
		{name: "dangling dependency, sealed", data: resealPlan(t, data, func(p *planner.Plan) { p.Steps[0].DependsOn = []string{"pull nowhere x"} }),
			want: `depends on "pull nowhere x", which is not an earlier step`},
		{name: "empty", data: nil, want: "the file is empty"},
		{name: "a state file", data: []byte(`{"format_version":1,"lineage":"x"}`), want: `not a plan file (json: unknown field "lineage")`, notPlan: true},
		{name: "a configuration", data: []byte(`project = "shop"`), want: "not a plan file (plan files are JSON objects)", notPlan: true},
		{name: "another kind", data: []byte(`{"kind":"dockplan-state"}`), want: `not a plan file (kind "dockplan-state")`, notPlan: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planner.ParseSavedPlan("x.plan", tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, planner.ErrNotSavedPlan) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if advice := strings.Contains(err.Error(), "plan -out x.plan"); advice == tt.notPlan {
				t.Errorf("err = %v: advice to write a new plan over the file = %v, want %v", err, advice, !tt.notPlan)
			}
		})
	}
}

func TestDestroy(t *testing.T) {
	s := newSim(t, load(t, shop))
	s.apply(s.plan())
	p, err := planner.Make(s.cfg, s.snap, s.st, planner.Options{Refreshed: true, Destroy: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Summary.Delete != 6 || len(p.Steps) != 6 {
		t.Fatalf("destroy plan: %v", actions(p))
	}
	// web goes before api, api before db; indexes in any order.
	pos := map[string]int{}
	for i, st := range p.Steps {
		pos[st.Address] = i
	}
	for _, pair := range [][2]string{{"web[0]", "api[0]"}, {"web[1]", "api[2]"}, {"api[0]", "db"}} {
		if pos[pair[0]] > pos[pair[1]] {
			t.Errorf("%s is deleted after %s: %v", pair[0], pair[1], actions(p))
		}
	}
	s.apply(p)
	if len(s.st.Instances) != 0 {
		t.Fatalf("state not empty: %v", s.st.Addresses())
	}
}

// A replace a killed apply left half done: the new container under its
// temporary name runs next to the old one. The next plan deletes the spare
// before it replaces again, and its dependents after, with no cycle.
func TestLeftoverTemporaryContainer(t *testing.T) {
	s := newSim(t, load(t, shop))
	s.apply(s.plan())
	hf := s.snap.Host(s.st.Instances["db"].Host)
	spare := *s.find(hf.Name, "shop-db-0")
	spare.ID, spare.Name = "spare", "shop-db-0-dockplan-next"
	hf.Managed = append(hf.Managed, spare)
	s.cfg = load(t, strings.Replace(shop, `image = "postgres:16"`, `image = "postgres:17"`, 1))
	recount(s.snap)
	p := s.plan()
	pos := map[string]int{}
	for i, st := range p.Steps {
		pos[st.ID] = i
	}
	del := "delete shop-db-0-dockplan-next " + hf.Name
	if _, ok := pos[del]; !ok || pos[del] > pos["replace db"] {
		t.Fatalf("the spare is not deleted before the replace: %v", actions(p))
	}
	s.apply(p)
	if p2 := s.plan(); p2.Changes() {
		t.Fatalf("not converged: %v", actions(p2))
	}
}

// resealPlan decodes a saved plan, edits its plan and seals it again with
// a matching checksum, as a deliberate hand edit would.
func resealPlan(t *testing.T, data []byte, edit func(*planner.Plan)) []byte {
	t.Helper()
	var sp planner.SavedPlan
	if err := json.Unmarshal(data, &sp); err != nil {
		t.Fatal(err)
	}
	edit(sp.Plan)
	out, err := json.Marshal(&sp)
	if err != nil {
		t.Fatal(err)
	}
	return seal(out)
}

// TestReplaceOnRequest: Options.Replace re-creates an unchanged instance,
// and the instances linking to it follow, since its new port is known
// only after apply; applying that converges.
func TestReplaceOnRequest(t *testing.T) {
	s := newSim(t, load(t, shop))
	s.apply(s.plan())
	p, err := planner.Make(s.cfg, s.snap, s.st, planner.Options{Refreshed: true, Replace: map[string]bool{"api[1]": true}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"replace api[1] @node1", "replace web[0] @node2", "replace web[1] @node1"}
	if got := actions(p); !slices.Equal(got, want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	if r := p.Steps[0].Reason; !strings.Contains(r, "-replace") {
		t.Errorf("reason = %q, want it to name -replace", r)
	}
	s.apply(p)
	if p := s.plan(); p.Changes() {
		t.Fatalf("re-plan after the replace has changes: %v", actions(p))
	}
}

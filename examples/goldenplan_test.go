package examples_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/render"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// threeTierVars are the -var values the golden plans are made with: the
// test lab's engines, as the example's defaults name them.
var threeTierVars = []string{
	"node1_address=tcp://10.213.0.11:2375",
	"node2_address=tcp://10.213.0.12:2375",
	"node3_address=tcp://10.213.0.13:2375",
}

// threeTierHosts are what a probe of the three hosts reports: 2 CPUs and
// 4GiB each (node3's capacity block overrides it with 2 CPUs and 2GiB),
// reached at the lab addresses.
var threeTierHosts = map[string]hostFacts{
	"node1": {total: probe.Resources{MilliCPU: 2000, MemoryBytes: 4 << 30}, reach: "10.213.0.11"},
	"node2": {total: probe.Resources{MilliCPU: 2000, MemoryBytes: 4 << 30}, reach: "10.213.0.12"},
	"node3": {total: probe.Resources{MilliCPU: 2000, MemoryBytes: 4 << 30}, reach: "10.213.0.13"},
}

// TestThreeTierGoldenPlans renders the three-tier example's plans as text,
// Markdown and JSON: first from nothing, then, after that plan was carried
// out, with a new image for api (which the hosts lack).
func TestThreeTierGoldenPlans(t *testing.T) {
	s := newSim(t, loadThreeTier(t, nil), threeTierHosts)
	first := s.plan()
	goldenPlan(t, "three-tier_create", first)
	if got := first.Summary; got.Create != 6 || len(first.Steps) != 6 {
		t.Errorf("first plan summary = %+v with %d steps, want 6 creates and nothing else", got, len(first.Steps))
	}

	s.apply(first)
	if again := s.plan(); again.Changes() {
		t.Fatalf("re-plan after the simulated apply has %d steps, want none", len(again.Steps))
	}

	s.cfg = loadThreeTier(t, func(name, src string) string {
		if name != "app.dockplan.hcl" {
			return src
		}
		return replaceAPIImage(t, src, `"dockplan-testapp:v2"`)
	})
	second := s.plan()
	goldenPlan(t, "three-tier_api-image", second)
	sum := second.Summary
	// api's three instances get the new image; web's two follow, because
	// the api host ports they link to are picked by Docker again; each of
	// the three hosts first receives the new image.
	if sum.Replace != 5 || sum.Pull != 3 || sum.Create+sum.Delete+sum.Move+sum.Update+sum.Start != 0 {
		t.Errorf("second plan summary = %+v, want 5 replaces and 3 pulls", sum)
	}
	for _, step := range second.Steps {
		if step.Container == "api" && !slices.Contains(step.ForcedBy, "image") {
			t.Errorf("%s forced by %v, want image among them", step.ID, step.ForcedBy)
		}
	}
}

// loadThreeTier decodes examples/three-tier with threeTierVars, after edit
// (when not nil) has rewritten each file's source.
func loadThreeTier(t *testing.T, edit func(name, src string) string) *hclspec.Config {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("three-tier", "*"+hclspec.FileSuffix))
	if err != nil || len(files) == 0 {
		t.Fatalf("no three-tier files: %v", err)
	}
	srcs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if edit != nil {
			b = []byte(edit(name, string(b)))
		}
		srcs[name] = b
	}
	cfg, _, diags := hclspec.LoadSources("three-tier", srcs, hclspec.LoadOptions{Vars: threeTierVars})
	for _, d := range diags {
		t.Errorf("three-tier: %v", d)
	}
	if cfg == nil || diags.HasErrors() {
		t.Fatal("three-tier does not decode")
	}
	return cfg
}

// replaceAPIImage points the api container's image at ref, leaving db and
// web on local.image.
func replaceAPIImage(t *testing.T, src, ref string) string {
	t.Helper()
	i := strings.Index(src, `container "api"`)
	if i < 0 {
		t.Fatal(`no container "api" block in app.dockplan.hcl`)
	}
	j := strings.Index(src[i:], "local.image")
	if j < 0 {
		t.Fatal("api's image is not local.image")
	}
	j += i
	return src[:j] + ref + src[j+len("local.image"):]
}

// goldenPlan compares the plan's text, Markdown and JSON with
// testdata/NAME.{txt,md,json}.golden.
func goldenPlan(t *testing.T, name string, p *planner.Plan) {
	t.Helper()
	for _, f := range []struct {
		ext    string
		render func(*bytes.Buffer) error
	}{
		{"txt", func(b *bytes.Buffer) error { return render.PlanText(b, p, render.TextOptions{}) }},
		{"md", func(b *bytes.Buffer) error { return render.PlanMarkdown(b, p) }},
		{"json", func(b *bytes.Buffer) error { return render.PlanJSON(b, p) }},
	} {
		var b bytes.Buffer
		if err := f.render(&b); err != nil {
			t.Fatalf("render %s as %s: %v", name, f.ext, err)
		}
		golden(t, name+"."+f.ext, b.Bytes())
	}
}

// golden compares got with testdata/NAME.golden, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
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
		t.Fatalf("%v (run go test ./examples -run %s -update)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

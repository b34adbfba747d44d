package planner_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/render"
)

// FuzzParseSavedPlan: no input panics the saved-plan decoder, and any file
// it accepts carries a plan, restores its variables and renders in every
// format (what show and apply do with it).
//
// The checksum turns away almost every mutation at once, so each input is
// also tried sealed again: decoded leniently, given the checksum of what it
// now holds and encoded. That is what a deliberate hand edit looks like
// (the checksum catches accidents, it is not a signature), and it lets the
// fuzzer reach the checks and the renderers behind the checksum.
//
// The seeds are valid plans (a create plan with a sensitive variable and
// a destroy plan), truncations, a tampered and a tampered-then-sealed plan,
// and files that are not plans at all.
func FuzzParseSavedPlan(f *testing.F) {
	cfg := load(f, shop)
	s := newSim(f, cfg)
	create := s.plan()
	s.apply(create)
	destroy, err := planner.Make(s.cfg, s.snap, s.st, planner.Options{Refreshed: true, Destroy: true})
	if err != nil {
		f.Fatal(err)
	}
	var valid [][]byte
	for _, p := range []*planner.Plan{create, destroy} {
		sp, err := planner.NewSavedPlan(p, cfg, []string{"DOCKER_HOST=unix:///var/run/docker.sock"})
		if err != nil {
			f.Fatal(err)
		}
		data, err := sp.Encode()
		if err != nil {
			f.Fatal(err)
		}
		if _, err := planner.ParseSavedPlan("seed.plan", data); err != nil {
			f.Fatalf("a valid seed is refused: %v", err)
		}
		valid = append(valid, data)
	}
	good := valid[0]
	tampered := []byte(strings.Replace(string(good), `"create"`, `"delete"`, 1))
	for _, seed := range [][]byte{
		good, valid[1],
		good[:len(good)/2], good[:len(good)-2], good[:1],
		tampered, seal(tampered),
		seal([]byte(strings.Replace(string(good), `"string"`, `"number"`, 1))),
		seal([]byte(strings.Replace(string(good), `"steps": [`, `"steps": [null,`, 1))),
		[]byte(""), []byte("project = \"shop\"\n"),
		[]byte(`{"format_version":1,"lineage":"5b1d2c3e-0000-4000-8000-00000000abcd","serial":1}`),
		[]byte(`{"format_version":1,"kind":"dockplan-plan"}`),
		[]byte(`{"format_version":9,"kind":"dockplan-plan"}`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSavedPlan(t, data)
		if sealed := seal(data); sealed != nil {
			checkSavedPlan(t, sealed)
		}
	})
}

// checkSavedPlan parses data and, when it is accepted, uses it as show and
// apply do.
func checkSavedPlan(t *testing.T, data []byte) {
	t.Helper()
	sp, err := planner.ParseSavedPlan("fuzz.plan", data)
	if err != nil {
		if !strings.Contains(err.Error(), "fuzz.plan") {
			t.Fatalf("error does not name the file: %v", err)
		}
		return
	}
	if sp.Plan == nil {
		t.Fatal("accepted a saved plan without a plan")
	}
	_, _ = sp.Values()
	_ = sp.Sources()
	_ = render.PlanText(io.Discard, sp.Plan, render.TextOptions{})
	_ = render.PlanJSON(io.Discard, sp.Plan)
	_ = render.PlanMarkdown(io.Discard, sp.Plan)
}

// seal decodes data leniently and encodes it again with a matching
// checksum; nil when data does not decode.
func seal(data []byte) []byte {
	var sp planner.SavedPlan
	if json.Unmarshal(data, &sp) != nil {
		return nil
	}
	sum, err := planner.SavedPlanChecksum(&sp)
	if err != nil {
		return nil
	}
	sp.Checksum = sum
	out, err := json.Marshal(&sp)
	if err != nil {
		return nil
	}
	return out
}

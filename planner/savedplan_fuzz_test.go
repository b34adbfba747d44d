package planner_test

import (
	"testing"

	"github.com/dockplan/dockplan/planner"
)

// FuzzParseSavedPlan: no input panics the saved-plan decoder, and any file
// it accepts carries a plan and restores its variables.
func FuzzParseSavedPlan(f *testing.F) {
	cfg := load(f, shop)
	p := newSim(f, cfg).plan()
	sp, err := planner.NewSavedPlan(p, cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	data, _ := sp.Encode()
	f.Add(data)
	f.Add([]byte(`{"format_version":1,"kind":"dockplan-plan"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := planner.ParseSavedPlan("fuzz.plan", data)
		if err != nil {
			return
		}
		if sp.Plan == nil {
			t.Fatal("accepted a saved plan without a plan")
		}
		_, _ = sp.Values()
	})
}

package planner

import (
	"slices"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"pgregory.net/rapid"
)

// The keyed sorts must order exactly as comparing the strings does,
// whatever the strings share or hold (zero bytes, prefixes of each other).
func TestKeyedSortsMatchComparisons(t *testing.T) {
	str := rapid.StringOfN(rapid.SampledFrom([]rune{0, 'a', 'b', '[', '1', '2'}), 0, 20, -1)
	rapid.Check(t, func(rt *rapid.T) {
		ids := rapid.SliceOfDistinct(str, func(s string) string { return s }).Draw(rt, "ids")
		var steps []*Step
		var todo []*decision
		for i, id := range ids {
			steps = append(steps, &Step{ID: id, Action: Action(i % 8)})
			mem := int64(rapid.IntRange(0, 2).Draw(rt, "mem"))
			todo = append(todo, &decision{inst: &hclspec.Instance{Address: id, Resources: hclspec.Resources{MemoryBytes: mem, MilliCPU: int64(i % 2)}}})
		}
		want := slices.Clone(steps)
		slices.SortFunc(want, stepCompare)
		sortSteps(steps)
		if !slices.Equal(steps, want) {
			rt.Fatalf("sortSteps: got %v, want %v", stepIDs(steps), stepIDs(want))
		}
		wantTodo := slices.Clone(todo)
		slices.SortFunc(wantTodo, func(x, y *decision) int {
			a, b := requestOf(x.inst), requestOf(y.inst)
			if a.MemoryBytes != b.MemoryBytes {
				return int(b.MemoryBytes - a.MemoryBytes)
			}
			if a.MilliCPU != b.MilliCPU {
				return int(b.MilliCPU - a.MilliCPU)
			}
			return strings.Compare(x.inst.Address, y.inst.Address)
		})
		sortByRequest(todo)
		if !slices.Equal(todo, wantTodo) {
			rt.Fatalf("sortByRequest differs")
		}
	})
}

func stepIDs(steps []*Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.ID)
	}
	return out
}

// TestTopoSortRefusesSharedIDs: steps that share an ID are a planner bug,
// reported as one, never ordered as a single node.
func TestTopoSortRefusesSharedIDs(t *testing.T) {
	p := &planning{plan: &Plan{Steps: []*Step{
		{ID: "delete.app[0]", Action: Delete},
		{ID: "delete.app[0]", Action: Delete},
		{ID: "create.web[0]", Action: Create, DependsOn: []string{"delete.app[0]"}},
	}}}
	err := p.topoSort()
	if err == nil || !strings.Contains(err.Error(), `internal error: two steps of the plan have the ID "delete.app[0]"`) {
		t.Fatalf("topoSort = %v, want the shared ID reported", err)
	}
}

package planner_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
	"pgregory.net/rapid"
)

// genConfig draws a configuration: 1-6 hosts of various sizes in two
// zones, 1-5 containers with counts, requests, strategies, distinct_hosts,
// zone constraints, and links to earlier containers.
func genConfig(t *rapid.T) string {
	var b strings.Builder
	b.WriteString("project = \"prop\"\n")
	hosts := rapid.IntRange(1, 6).Draw(t, "hosts")
	for i := range hosts {
		fmt.Fprintf(&b, "host \"h%d\" {\n  address = \"unix:///h%d.sock\"\n  labels = { zone = %q }\n  capacity {\n    cpu = %d\n    memory = \"%dGiB\"\n  }\n}\n",
			i, i, []string{"a", "b"}[rapid.IntRange(0, 1).Draw(t, "zone")], rapid.IntRange(1, 8).Draw(t, "cpu"), rapid.IntRange(1, 16).Draw(t, "mem"))
	}
	containers := rapid.IntRange(1, 5).Draw(t, "containers")
	for i := range containers {
		fmt.Fprintf(&b, "container \"c%d\" {\n  image = \"img%d:1\"\n  count = %d\n  ports = [\"8080\"]\n", i, i, rapid.IntRange(0, 4).Draw(t, "count"))
		fmt.Fprintf(&b, "  resources {\n    cpu = %s\n    memory = \"%dMiB\"\n  }\n",
			fmt.Sprintf("%.1f", float64(rapid.IntRange(1, 20).Draw(t, "dcpu"))/10), rapid.IntRange(64, 2048).Draw(t, "mib"))
		b.WriteString("  placement {\n")
		fmt.Fprintf(&b, "    strategy = %q\n", rapid.SampledFrom([]string{"spread", "binpack"}).Draw(t, "strategy"))
		fmt.Fprintf(&b, "    distinct_hosts = %v\n", rapid.Bool().Draw(t, "distinct"))
		if rapid.IntRange(0, 3).Draw(t, "constrain") == 0 {
			fmt.Fprintf(&b, "    labels = { zone = %q }\n", rapid.SampledFrom([]string{"a", "b"}).Draw(t, "zonec"))
		}
		b.WriteString("  }\n")
		if i > 0 && rapid.Bool().Draw(t, "link") {
			fmt.Fprintf(&b, "  link \"c%d\" {}\n", rapid.IntRange(0, i-1).Draw(t, "target"))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		src := genConfig(rt)
		cfg := load(t, src)
		s := newSim(t, cfg)
		p, err := planner.Make(cfg, s.snap, s.st, planner.Options{Refreshed: true})
		var pe *planner.PlaceError
		if errors.As(err, &pe) {
			return // an infeasible draw; the error lists every host
		}
		if err != nil {
			rt.Fatalf("plan: %v\n%s", err, src)
		}
		checkCapacity(rt, p)
		checkPlacement(rt, p, s)
		checkOrder(rt, p)
		again, _ := planner.Make(cfg, snapshotOf(cfg), state.New(cfg.Project, testLineage), planner.Options{Refreshed: true})
		a, _ := json.Marshal(p)
		b2, _ := json.Marshal(again)
		if string(a) != string(b2) {
			rt.Fatalf("same input, different plans")
		}
		s.apply(p)
		if p2 := s.plan(); p2.Changes() {
			rt.Fatalf("re-plan after apply has changes: %v\n%s", actions(p2), src)
		}
	})
}

// checkCapacity: no host ends over its capacity.
func checkCapacity(t *rapid.T, p *planner.Plan) {
	for _, h := range p.Hosts {
		if h.After.MilliCPU > h.Capacity.MilliCPU || h.After.MemoryBytes > h.Capacity.MemoryBytes {
			t.Fatalf("host %s over capacity: %+v > %+v", h.Name, h.After, h.Capacity)
		}
	}
}

// checkPlacement: every instance created exactly once; distinct_hosts and
// label constraints honoured.
func checkPlacement(t *rapid.T, p *planner.Plan, s *sim) {
	created := map[string]int{}
	perHost := map[string]int{}
	for _, st := range p.Steps {
		if st.Action == planner.Create {
			created[st.Address]++
			perHost[st.Container+"@"+st.Host]++
		}
	}
	for _, ct := range s.cfg.Containers {
		for _, inst := range ct.Instances {
			if created[inst.Address] != 1 {
				t.Fatalf("%s created %d times", inst.Address, created[inst.Address])
			}
		}
		for _, h := range s.cfg.Hosts {
			if ct.Placement.DistinctHosts && perHost[ct.Name+"@"+h.Name] > 1 {
				t.Fatalf("%s has %d instances on %s despite distinct_hosts", ct.Name, perHost[ct.Name+"@"+h.Name], h.Name)
			}
			for k, v := range ct.Placement.Labels {
				if perHost[ct.Name+"@"+h.Name] > 0 && h.Labels[k] != v {
					t.Fatalf("%s placed on %s without label %s=%s", ct.Name, h.Name, k, v)
				}
			}
		}
	}
}

// checkOrder: every step comes after the steps it depends on.
func checkOrder(t *rapid.T, p *planner.Plan) {
	pos := map[string]int{}
	for i, st := range p.Steps {
		pos[st.ID] = i
	}
	for i, st := range p.Steps {
		for _, dep := range st.DependsOn {
			j, ok := pos[dep]
			if !ok || j >= i {
				t.Fatalf("step %s at %d depends on %s at %d", st.ID, i, dep, j)
			}
		}
	}
}

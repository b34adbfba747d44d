package planner_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// scaleConfig declares hosts (cpus CPUs and 4×cpus GiB, in 4 zones) and containers
// with count instances each, in three sizes; a third are spread across
// distinct hosts.
func scaleConfig(hosts, containers, count, cpus int) string {
	var b strings.Builder
	b.WriteString("project = \"scale\"\n")
	for i := range hosts {
		fmt.Fprintf(&b, "host \"h%04d\" {\n  address = \"unix:///h%d.sock\"\n  labels = { zone = \"z%d\" }\n  capacity {\n    cpu = %d\n    memory = \"%dGiB\"\n  }\n}\n", i, i, i%4, cpus, 4*cpus)
	}
	for i := range containers {
		fmt.Fprintf(&b, "container \"c%04d\" {\n  image = \"img:1\"\n  count = %d\n  resources {\n    cpu = %s\n    memory = \"%dMiB\"\n  }\n", i, count, []string{"0.1", "0.25", "0.5"}[i%3], []int{128, 256, 512}[i%3])
		if i%3 == 0 {
			b.WriteString("  placement {\n    distinct_hosts = true\n  }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func benchPlan(b *testing.B, hosts, containers, count, cpus int) {
	cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"s.dockplan.hcl": []byte(scaleConfig(hosts, containers, count, cpus))}, hclspec.LoadOptions{})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	snap := snapshotOf(cfg)
	st := state.New(cfg.Project, testLineage)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := planner.Make(cfg, snap, st, planner.Options{Refreshed: true})
		if err != nil {
			b.Fatal(err)
		}
		if p.Summary.Create != containers*count {
			b.Fatalf("%d creates", p.Summary.Create)
		}
	}
	b.ReportMetric(float64(containers*count), "instances")
}

// BenchmarkPlan10kOn500 plans 10,000 new instances on 500 hosts (target
// under 200 ms).
func BenchmarkPlan10kOn500(b *testing.B) { benchPlan(b, 500, 100, 100, 8) }

// BenchmarkPlan1kOn50 is the size of a large real deployment.
func BenchmarkPlan1kOn50(b *testing.B) { benchPlan(b, 50, 100, 10, 8) }

var _ = probe.FormatVersion

// BenchmarkPlan100kOn1000 plans 100,000 instances (100 containers × 1,000)
// on 1,000 hosts, a step toward the 1,000,000 × 5,000 target.
func BenchmarkPlan100kOn1000(b *testing.B) { benchPlan(b, 1000, 100, 1000, 64) }

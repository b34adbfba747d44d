package planner_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
)

// qualityConfig declares 40 identical hosts (4 CPUs, 8GiB) and 30
// containers with random counts (1-8) and sizes (0.1-1.5 CPU, 128-2048MiB),
// all with the given strategy. The seed makes the workload repeatable.
func qualityConfig(seed uint64, strategy string) (string, float64, float64) {
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString("project = \"quality\"\n")
	for i := range 40 {
		fmt.Fprintf(&b, "host \"h%02d\" {\n  address = \"unix:///h%d.sock\"\n  capacity {\n    cpu = 4\n    memory = \"8GiB\"\n  }\n}\n", i, i)
	}
	var cpu, mem float64
	for i := range 30 {
		count := 1 + r.IntN(8)
		c := float64(1+r.IntN(15)) / 10
		m := 128 + r.IntN(1921)
		cpu += float64(count) * c
		mem += float64(count) * float64(m)
		fmt.Fprintf(&b, "container \"c%02d\" {\n  image = \"img:1\"\n  count = %d\n  resources {\n    cpu = %.1f\n    memory = \"%dMiB\"\n  }\n  placement {\n    strategy = %q\n  }\n}\n", i, count, c, m, strategy)
	}
	return b.String(), cpu, mem
}

// BenchmarkPlacementQuality reports how many hosts binpack fills against
// a lower bound (total requests over one host's capacity, per resource)
// for generated workloads that fit; 1.0 would be a perfect packing.
func BenchmarkPlacementQuality(b *testing.B) {
	var ratios []float64
	for seed := uint64(1); seed <= 20; seed++ {
		src, cpu, mem := qualityConfig(seed, "binpack")
		cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"q.dockplan.hcl": []byte(src)}, hclspec.LoadOptions{})
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		p, err := planner.Make(cfg, snapshotOf(cfg), state.New(cfg.Project, testLineage), planner.Options{Refreshed: true})
		if err != nil {
			continue // does not fit: not a quality sample
		}
		used := 0
		for _, h := range p.Hosts {
			if h.After.MilliCPU > 0 {
				used++
			}
		}
		lower := math.Max(math.Ceil(cpu/4), math.Ceil(mem/8192))
		ratios = append(ratios, float64(used)/lower)
	}
	if len(ratios) == 0 {
		b.Fatal("no workload fitted")
	}
	sum, worst := 0.0, 0.0
	for _, r := range ratios {
		sum += r
		worst = math.Max(worst, r)
	}
	for b.Loop() {
	}
	b.ReportMetric(sum/float64(len(ratios)), "hosts/lower-bound-mean")
	b.ReportMetric(worst, "hosts/lower-bound-worst")
	b.ReportMetric(float64(len(ratios)), "workloads")
}

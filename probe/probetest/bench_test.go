package probetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/probe"
)

const (
	// benchPerHost is how many running containers each lab host holds
	// during BenchmarkProbeLab.
	benchPerHost = 100
	// benchLabel marks the benchmark's containers; its value is the run.
	benchLabel = "dockplan-probetest.bench"
	// benchStartConcurrency bounds container starts per host: the machine
	// has 2 cores.
	benchStartConcurrency = 3
)

// BenchmarkProbeLab probes three lab hosts holding benchPerHost running
// containers each (the test image, 0.01 CPU and 32MiB each) over their
// tcp:// endpoints: in process once per inspect concurrency (all three
// hosts, and host 1 alone), and end to end as `dockplan hosts -json`. Each
// sub-benchmark reports the median wall time of one whole probe
// (median-ms) and the API calls made per host; the parent logs the medians
// over every -count run and their ratios.
// docs/benchmarks.md has the figures and the command.
//
// It holds the lab exclusively: other tests' containers would change what
// is measured, and its 300 containers would change their figures.
func BenchmarkProbeLab(b *testing.B) {
	lab := labenv.RequireExclusive(b, 3)
	hosts := lab.Hosts[:3]
	fillHosts(b, hosts, benchPerHost)
	blocks := make([]string, len(hosts))
	for i, h := range hosts {
		blocks[i] = h.HCL()
	}
	project := uniqueName(b, "probebench")
	dir := b.TempDir()
	src := fmt.Sprintf("project = %q\n%s\ncontainer \"web\" {\n  image = %q\n}\n",
		project, strings.Join(blocks, "\n"), labenv.TestImage)
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := loadConfig(b, dir, src)

	// Times of every run, -count included, by sub-benchmark.
	times := map[string][]time.Duration{}
	var names []string
	measure := func(name string, probeOnce func(b *testing.B) *probe.Snapshot) {
		names = append(names, name)
		b.Run(name, func(b *testing.B) {
			var ts []time.Duration
			var calls int
			for b.Loop() {
				start := time.Now()
				snap := probeOnce(b)
				ts = append(ts, time.Since(start))
				for _, h := range snap.Hosts {
					if !h.Reachable || h.Running < benchPerHost {
						b.Fatalf("%s: reachable %v (%s), %d running; want %d", h.Name, h.Reachable, h.Error, h.Running, benchPerHost)
					}
					calls = max(calls, h.APICalls)
				}
			}
			times[name] = append(times[name], ts...)
			b.ReportMetric(float64(median(ts).Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(calls), "api-calls/host")
		})
	}
	oneHost := loadConfig(b, b.TempDir(), fmt.Sprintf("project = %q\n%s\ncontainer \"web\" {\n  image = %q\n}\n",
		project, blocks[0], labenv.TestImage))
	for _, conc := range []int{1, probe.DefaultInspectConcurrency, 12} {
		measure(fmt.Sprintf("3-hosts/inspect-concurrency=%d", conc), func(b *testing.B) *probe.Snapshot {
			return probe.Probe(b.Context(), cfg, probe.Options{InspectConcurrency: conc})
		})
	}
	for _, conc := range []int{1, probe.DefaultInspectConcurrency} {
		measure(fmt.Sprintf("1-host/inspect-concurrency=%d", conc), func(b *testing.B) *probe.Snapshot {
			return probe.Probe(b.Context(), oneHost, probe.Options{InspectConcurrency: conc})
		})
	}
	measure("3-hosts/dockplan-hosts-json", func(b *testing.B) *probe.Snapshot {
		res := runDockplan(b, dir, nil, "hosts", "-json")
		var snap probe.Snapshot
		if err := json.Unmarshal([]byte(res.stdout), &snap); res.code != 0 || err != nil {
			b.Fatalf("dockplan hosts -json: %v; %s", err, res)
		}
		return &snap
	})
	for _, name := range names {
		group, _, _ := strings.Cut(name, "/")
		base := median(times[group+"/inspect-concurrency=1"])
		m := median(times[name])
		b.Logf("%s: median %v of %d probes, %.2fx the speed of %s/inspect-concurrency=1", name, m.Round(100*time.Microsecond),
			len(times[name]), float64(base)/float64(m), group)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// fillHosts starts n running containers on every host, over its unix
// socket, and removes them when the benchmark ends. Containers of an
// earlier interrupted run are removed first.
func fillHosts(b *testing.B, hosts []labenv.Host, n int) {
	b.Helper()
	run := uniqueName(b, "run")
	engines := make([]engine.Engine, len(hosts))
	for i, h := range hosts {
		eng, err := engine.Dial(b.Context(), engine.Endpoint{HostName: h.Name, Address: h.Socket, Timeout: 60 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { eng.Close() })
		engines[i] = eng
		if err := removeLabelled(eng, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, eng := range engines {
			wg.Go(func() {
				if err := removeLabelled(eng, run); err != nil {
					b.Errorf("clean up: %v", err)
				}
			})
		}
		wg.Wait()
	})
	start := time.Now()
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, eng := range engines {
		wg.Go(func() {
			errs[i] = startMany(b.Context(), eng, run, n)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("started %d containers on each of %d hosts in %v", n, len(hosts), time.Since(start).Round(time.Millisecond))
}

// startMany creates and starts n small containers of the test image.
func startMany(ctx context.Context, eng engine.Engine, run string, n int) error {
	sem := make(chan struct{}, benchStartConcurrency)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id, err := eng.CreateContainer(ctx, engine.ContainerSpec{
				Name: fmt.Sprintf("%s-%d", run, i), Image: labenv.TestImage,
				Labels:    map[string]string{benchLabel: run},
				Resources: engine.Resources{NanoCPUs: 1e7, Memory: 32 << 20},
			})
			if err == nil {
				err = eng.StartContainer(ctx, id)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removeLabelled force-removes the benchmark's containers of run (of any
// run when run is empty).
func removeLabelled(eng engine.Engine, run string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	list, err := eng.ListContainers(ctx, engine.ListOptions{All: true, Labels: map[string]string{benchLabel: run}})
	if err != nil {
		return err
	}
	sem := make(chan struct{}, benchStartConcurrency)
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := eng.RemoveContainer(ctx, c.ID, engine.RemoveOptions{Force: true}); err != nil && !errors.Is(err, engine.ErrNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

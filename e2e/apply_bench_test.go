package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

const (
	// benchContainers × benchCount instances are applied and destroyed in
	// every round of BenchmarkApplyLab: 60, spread over three hosts.
	benchContainers = 20
	benchCount      = 3
	// benchPlanCount is the count of the same 20 containers for the
	// no-change plan: 100 running instances.
	benchPlanCount = 5
	// benchPlanRuns is how many no-change plans (and floor refreshes) are
	// timed.
	benchPlanRuns = 10
	// benchRunTimeout is a hang guard for one process.
	benchRunTimeout = 5 * time.Minute
	// benchSettle is the pause between making containers and removing
	// them. A container stopped within about 0.4 s of its start can lose
	// its SIGTERM (the test image has not installed its handler yet, and
	// PID 1 ignores a signal it does not handle), and its stop then waits
	// the engine's 10 s timeout ("Container failed to exit within 10s of
	// signal 15" in dockerd's log, seen three times without the pause,
	// Docker 20.10.24). Both dockplan and the floor get the same pause.
	benchSettle = time.Second
)

// BenchmarkApplyLab compares, in one run on three lab hosts, dockplan
// against bench/floor, a program that makes the same Docker calls with
// nothing around them. Each round (-benchtime Nx gives N rounds) runs
// `dockplan apply -auto-approve -json` of 60 new instances (the test image
// with image_source = "local", 32 MiB and 0.05 CPU each) and `dockplan
// destroy -auto-approve -json`, and the floor's create of 60 and its
// remove, each removal benchSettle after the creation; every second round
// runs the floor first. After the rounds it applies 100
// instances and times benchPlanRuns no-change `plan -detailed-exitcode`
// runs against as many floor list-and-inspect runs of those containers,
// interleaved. Every figure is the wall time of a whole process; the log
// adds where apply's time goes, from its -json events.
// docs/benchmarks.md ("Apply") has the figures and the command.
//
// It holds the lab exclusively: other tests' containers and faults would
// change what is measured.
func BenchmarkApplyLab(b *testing.B) {
	lab := labenv.RequireExclusive(b, 3)
	e := newApplyBench(b, lab)
	var applies, destroys, creates, removes []benchRun
	for round := 0; b.Loop(); round++ {
		dockplan := func() {
			applies = append(applies, e.dockplanJSON(e.dir60, "apply", benchContainers*benchCount))
			time.Sleep(benchSettle)
			destroys = append(destroys, e.dockplanJSON(e.dir60, "destroy", benchContainers*benchCount))
		}
		floor := func() {
			creates = append(creates, e.floor(benchContainers*benchCount, "-n", fmt.Sprint(benchContainers*benchCount)))
			time.Sleep(benchSettle)
			removes = append(removes, e.floor(benchContainers*benchCount, "-remove"))
		}
		if round%2 == 0 {
			dockplan()
			floor()
		} else {
			floor()
			dockplan()
		}
	}
	e.logRuns("apply 60", applies)
	e.logRuns("floor create 60", creates)
	e.logRuns("destroy 60", destroys)
	e.logRuns("floor remove 60", removes)
	b.ReportMetric(medianWall(applies).Seconds(), "apply-s")
	b.ReportMetric(medianWall(creates).Seconds(), "floor-create-s")
	b.ReportMetric(ratio(applies, creates), "apply/floor")
	b.ReportMetric(medianWall(destroys).Seconds(), "destroy-s")
	b.ReportMetric(medianWall(removes).Seconds(), "floor-remove-s")
	b.ReportMetric(ratio(destroys, removes), "destroy/floor")
	b.Logf("ratio of medians: apply/floor create %.3f, destroy/floor remove %.3f; median of the rounds' own ratios: %.3f, %.3f",
		ratio(applies, creates), ratio(destroys, removes), roundRatio(applies, creates), roundRatio(destroys, removes))

	plans, refreshes := e.noChangePlans()
	e.logRuns("no-change plan 100", plans)
	e.logRuns("floor list+inspect 100", refreshes)
	b.ReportMetric(medianWall(plans).Seconds(), "plan-s")
	b.ReportMetric(medianWall(refreshes).Seconds(), "floor-inspect-s")
}

// applyBench is BenchmarkApplyLab's working set.
type applyBench struct {
	b         *testing.B
	lab       *labenv.Lab
	floorBin  string
	endpoints []string
	project   string // of the 60; the 100 are project+"-plan"
	dir60     string
	dir100    string
}

func newApplyBench(b *testing.B, lab *labenv.Lab) *applyBench {
	e := &applyBench{b: b, lab: lab, project: fmt.Sprintf("applybench%d", time.Now().UnixNano()%1_000_000_000)}
	for _, h := range lab.Hosts[:3] {
		e.endpoints = append(e.endpoints, h.TCPAddress)
	}
	e.floorBin = filepath.Join(b.TempDir(), "floor")
	if out, err := exec.Command("go", "build", "-o", e.floorBin, "../bench/floor").CombinedOutput(); err != nil {
		b.Fatalf("building bench/floor: %v\n%s", err, out)
	}
	e.dir60 = e.writeConfig(e.project, benchCount)
	e.dir100 = e.writeConfig(e.project+"-plan", benchPlanCount)
	b.Cleanup(e.cleanup)
	for _, h := range lab.Hosts[:3] {
		out, _ := exec.Command("docker", "-H", h.Socket, "ps", "-q").Output()
		if n := len(strings.Fields(string(out))); n > 0 {
			b.Logf("note: %s already runs %d containers of someone else", h.Name, n)
		}
	}
	return e
}

// writeConfig writes benchContainers containers of count instances each,
// on the lab's first three hosts, into a new folder.
func (e *applyBench) writeConfig(project string, count int) string {
	var src strings.Builder
	fmt.Fprintf(&src, "project = %q\n\n", project)
	for _, h := range e.lab.Hosts[:3] {
		src.WriteString(h.HCL() + "\n")
	}
	for i := range benchContainers {
		fmt.Fprintf(&src, `container "svc%d" {
  image        = %q
  image_source = "local"
  count        = %d
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}

`, i, labenv.TestImage, count)
	}
	dir := e.b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(src.String()), 0o644); err != nil {
		e.b.Fatal(err)
	}
	return dir
}

// cleanup destroys both projects and removes whatever of theirs and of the
// floor's is still on a lab host.
func (e *applyBench) cleanup() {
	for _, dir := range []string{e.dir60, e.dir100} {
		_ = exec.Command(binary, "-chdir="+dir, "destroy", "-auto-approve").Run()
	}
	for _, h := range e.lab.Hosts[:3] {
		for _, label := range []string{"dockplan.project=" + e.project, "dockplan.project=" + e.project + "-plan", e.floorLabel()} {
			out, _ := exec.Command("docker", "-H", h.Socket, "ps", "-aq", "--filter", "label="+label).Output()
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command("docker", "-H", h.Socket, "rm", "-f", id).Run()
			}
		}
	}
}

func (e *applyBench) floorLabel() string { return "dockplan-floor.run=" + e.project }

// noChangePlans applies 100 instances, then times benchPlanRuns no-change
// plans and as many floor refreshes (list and inspect the same 100
// containers), alternating, and destroys the 100.
func (e *applyBench) noChangePlans() (plans, refreshes []benchRun) {
	n := benchContainers * benchPlanCount
	applied := e.dockplanJSON(e.dir100, "apply", n)
	e.b.Logf("apply %d: %.2fs", n, applied.wall.Seconds())
	time.Sleep(benchSettle)
	for range benchPlanRuns {
		res := e.run(binary, "-chdir="+e.dir100, "plan", "-detailed-exitcode")
		if res.code != 0 || !strings.Contains(res.out, "No changes") {
			e.b.Fatalf("no-change plan exited %d:\n%s", res.code, res.out)
		}
		plans = append(plans, res)
		refreshes = append(refreshes, e.floor(n, "-inspect", "-label", "dockplan.project="+e.project+"-plan"))
	}
	destroyed := e.dockplanJSON(e.dir100, "destroy", n)
	e.b.Logf("destroy %d: %.2fs", n, destroyed.wall.Seconds())
	return plans, refreshes
}

// benchRun is one timed process.
type benchRun struct {
	out  string
	code int
	// wall is the whole process, from before exec to after exit.
	wall time.Duration
	// inner is the floor's own figure (the work without process start).
	inner time.Duration
	// From dockplan -json events: process start to the first step's
	// start, first start to last end, last end to process exit; the
	// median step; the mean number of steps in flight between the first
	// start and the last end, and the most on one host.
	startup, steps, tail time.Duration
	stepMedian           time.Duration
	inFlight             float64
	hostPeak             int
}

// run runs a program and times it.
func (e *applyBench) run(name string, args ...string) benchRun {
	e.b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		e.b.Fatal(err)
	}
	timer := time.AfterFunc(benchRunTimeout, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	res := benchRun{wall: time.Since(start), out: out.String()}
	timer.Stop()
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		e.b.Fatalf("%s %v: %v", name, args, err)
	}
	return res
}

// floor runs bench/floor on the three hosts (with the benchmark's label
// unless args set one) and checks it handled want containers.
func (e *applyBench) floor(want int, args ...string) benchRun {
	e.b.Helper()
	if !slices.Contains(args, "-label") {
		args = append(args, "-label", e.floorLabel())
	}
	res := e.run(e.floorBin, append(args, e.endpoints...)...)
	var verb string
	var n, endpoints int
	var secs float64
	_, err := fmt.Sscanf(res.out, "floor %s %d containers on %d endpoints in %fs", &verb, &n, &endpoints, &secs)
	if res.code != 0 || err != nil || n != want {
		e.b.Fatalf("floor %v: exit %d, %d containers (want %d), %v:\n%s", args, res.code, n, want, err, res.out)
	}
	res.inner = time.Duration(secs * float64(time.Second))
	return res
}

// dockplanJSON runs `dockplan apply|destroy -auto-approve -json` in dir,
// checks that it made want changes, and times its phases from the events.
func (e *applyBench) dockplanJSON(dir, verb string, want int) benchRun {
	e.b.Helper()
	start := time.Now()
	res := e.run(binary, "-chdir="+dir, verb, "-auto-approve", "-json")
	end := start.Add(res.wall)
	if res.code != 0 {
		e.b.Fatalf("dockplan %s exited %d:\n%s", verb, res.code, res.out)
	}
	events, changed := parseApplyEvents(e.b, res.out)
	if changed != want {
		e.b.Fatalf("dockplan %s changed %d instances, want %d:\n%s", verb, changed, want, res.out)
	}
	res.timePhases(events, start, end)
	return res
}

// stepEvent is the part of an apply -json step event the benchmark reads.
type stepEvent struct {
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Phase   string    `json:"phase"`
	Elapsed int64     `json:"elapsed_ns"`
	Counts  struct {
		Create, Delete int
	} `json:"counts"`
}

// parseApplyEvents returns the step events and the creates plus deletes
// of the summary.
func parseApplyEvents(b *testing.B, out string) ([]stepEvent, int) {
	var events []stepEvent
	changed := -1
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev stepEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			b.Fatalf("not a JSON event: %q: %v", sc.Text(), err)
		}
		switch ev.Type {
		case "step":
			events = append(events, ev)
		case "summary":
			changed = ev.Counts.Create + ev.Counts.Delete
		}
	}
	return events, changed
}

// timePhases fills the run's phase figures from its step events.
func (r *benchRun) timePhases(events []stepEvent, start, end time.Time) {
	var first, last time.Time
	var durations []time.Duration
	var inFlight time.Duration // sum of step durations
	perHost := map[string]int{}
	// Events are written in the order they were reported, which may
	// differ by microseconds from the order of their times.
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b stepEvent) int { return a.Time.Compare(b.Time) })
	for _, ev := range events {
		switch ev.Phase {
		case "started":
			if first.IsZero() || ev.Time.Before(first) {
				first = ev.Time
			}
			perHost[ev.Host]++
			r.hostPeak = max(r.hostPeak, perHost[ev.Host])
		case "done", "failed":
			if ev.Time.After(last) {
				last = ev.Time
			}
			perHost[ev.Host]--
			durations = append(durations, time.Duration(ev.Elapsed))
			inFlight += time.Duration(ev.Elapsed)
		}
	}
	if first.IsZero() || last.IsZero() {
		return
	}
	r.startup, r.steps, r.tail = first.Sub(start), last.Sub(first), end.Sub(last)
	r.stepMedian = medianOf(durations)
	r.inFlight = float64(inFlight) / float64(r.steps)
}

// logRuns logs every run of one kind and their median.
func (e *applyBench) logRuns(what string, runs []benchRun) {
	var walls []string
	for _, r := range runs {
		walls = append(walls, fmt.Sprintf("%.3f", r.wall.Seconds()))
	}
	e.b.Logf("%s: median %.3fs of %d: %s", what, medianWall(runs).Seconds(), len(runs), strings.Join(walls, " "))
	for i, r := range runs {
		switch {
		case r.inner > 0:
			e.b.Logf("  %d: %.3fs, floor's own time %.3fs", i+1, r.wall.Seconds(), r.inner.Seconds())
		case r.steps > 0:
			e.b.Logf("  %d: %.3fs = start to first step %.3fs + steps %.3fs + after last step %.3fs; step median %.3fs, %.2f in flight on average, at most %d on one host",
				i+1, r.wall.Seconds(), r.startup.Seconds(), r.steps.Seconds(), r.tail.Seconds(), r.stepMedian.Seconds(), r.inFlight, r.hostPeak)
		}
	}
}

func medianWall(runs []benchRun) time.Duration {
	walls := make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i] = r.wall
	}
	return medianOf(walls)
}

// ratio is the ratio of the median walls of a and b.
func ratio(a, b []benchRun) float64 {
	return float64(medianWall(a)) / float64(medianWall(b))
}

// roundRatio is the median over rounds of a's wall over b's in the same
// round: less sensitive than ratio to a machine that slows down or speeds
// up during the run.
func roundRatio(a, b []benchRun) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		rs = append(rs, float64(a[i].wall)/float64(b[i].wall))
	}
	slices.Sort(rs)
	if len(rs) == 0 {
		return 0
	}
	if len(rs)%2 == 0 {
		return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return rs[len(rs)/2]
}

func medianOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// tiersConfig is a small three-tier configuration: db, apis instances of
// api linked to db, and web linked to api, each tier ordered after the one
// before it. Only db declares a health check (every second: checks are
// `runc exec`s, which cost the lab's two cores dearly), so api waits
// until db is healthy. setting is in every container's env: changing it
// replaces everything.
func tiersConfig(setting string, apis int) string {
	return fmt.Sprintf(`
container "db" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  env = {
    SETTING = %[1]q
  }
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "1s"
    retries  = 3
  }
}

container "api" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = %[2]d
  ports        = ["8080"]
  env = {
    SETTING = %[1]q
  }
  link "db" {}
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}

container "web" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  env = {
    SETTING = %[1]q
  }
  link "api" {}
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`, setting, apis)
}

// tiersCounted names the container of tiersConfig declared with count.
var tiersCounted = map[string]bool{"api": true}

// stepStarted is in every line that reports a step starting ("db:
// Creating... [host1]", "api[0]: Replacing... [host2]").
const stepStarted = "ing... ["

// killTrial is what one kill of TestKilledApplyConverges did.
type killTrial struct {
	name string
	// at is when the kill was sent, after the first step started; span
	// is how long the lane's unkilled apply of the same kind ran from its
	// first step to its exit.
	at, span time.Duration
	// late: the apply had ended before the kill, so this was no kill;
	// retried: a first apply had, and this is the second.
	late, retried bool
	// lastLine is the last line the apply printed.
	lastLine string
	// unrecorded counts the containers with the project's label that the
	// state did not record after the kill (the next plan adopts, replaces
	// or removes them).
	unrecorded int
	passed     bool
}

// killLane is one project of TestKilledApplyConverges and the moments
// (fractions of a measured apply) at which its trials kill apply.
type killLane struct {
	name string
	// creates kill an apply that creates everything from nothing;
	// changes then kill applies that replace everything and add or
	// delete api[2].
	creates, changes []float64
}

// TestKilledApplyConverges kills `dockplan apply` of a three-tier
// configuration with SIGKILL at 20 moments spread over its run: 5 while it
// creates everything from nothing, 15 while it replaces everything and
// adds or deletes an api instance. Each kill comes at a fraction (3% to
// 82%) of the time an unkilled apply of the same kind (create, change
// that adds, change that deletes) took in the same lane, from its first
// step to its end. After each kill the state parses; the next plan acts
// on no instance twice, creates none that has a container, and acts on
// every labelled container the state does not record; the next apply
// converges (plan -detailed-exitcode says 0); and the state records
// exactly the containers that exist. Three lanes (one project each) run
// at once.
func TestKilledApplyConverges(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	frac := func(i, n int) float64 { return (float64(i) + 0.5) / float64(n) * 0.85 }
	// About the same work per lane: a create trial (with its destroy)
	// costs about two thirds of a change trial.
	lanes := []killLane{{name: "lane1"}, {name: "lane2"}, {name: "lane3"}}
	for i := range 5 {
		lanes[0].creates = append(lanes[0].creates, frac(i, 5))
	}
	for g := range 15 {
		lane := &lanes[1+g%2]
		if g%7 == 0 {
			lane = &lanes[0]
		}
		lane.changes = append(lane.changes, frac(g, 15))
	}
	var mu sync.Mutex
	var trials []*killTrial
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Go(func() {
			t.Run(lane.name, func(t *testing.T) {
				for _, k := range runKillLane(t, l, lane) {
					mu.Lock()
					trials = append(trials, k)
					mu.Unlock()
				}
			})
		})
	}
	wg.Wait()
	sort.Slice(trials, func(i, j int) bool { return trials[i].name < trials[j].name })
	passed, killed, retried, left := 0, 0, 0, 0
	var table strings.Builder
	for _, k := range trials {
		if k.passed {
			passed++
		}
		if !k.late {
			killed++
		}
		if k.retried {
			retried++
		}
		if k.unrecorded > 0 {
			left++
		}
		fmt.Fprintf(&table, "\n  %-11s kill at %5.2fs of %5.2fs  late=%-5v retried=%-5v unrecorded=%d  last line: %s",
			k.name, k.at.Seconds(), k.span.Seconds(), k.late, k.retried, k.unrecorded, k.lastLine)
	}
	t.Logf("%d of %d trials passed; %d killed the apply while it ran (%d at a second try); after %d the state did not record every labelled container:%s",
		passed, len(trials), killed, retried, left, table.String())
	if len(trials) == 20 && killed < 15 {
		t.Errorf("only %d of %d kills landed while the apply ran: the lab was much slower than when the spans were measured", killed, len(trials))
	}
}

// runKillLane runs one lane's trials in one project: the create trials
// (each followed by destroy), then the change trials.
func runKillLane(t *testing.T, l *labenv.Lab, lane killLane) []*killTrial {
	var out []*killTrial
	p := labProject(t, l, "e2ek", tiersConfig("s0", 2))
	if len(lane.creates) > 0 {
		span := measuredApply(p)
		p.mustRun("destroy", "-auto-approve")
		for _, f := range lane.creates {
			k := &killTrial{name: fmt.Sprintf("create/%02.0f%%", f*100), span: span}
			k.passed = t.Run(fmt.Sprintf("create at %02.0f%%", f*100), func(t *testing.T) {
				tp := *p
				tp.t = t
				killAndConverge(&tp, k, f, 4, func() { tp.mustRun("destroy", "-auto-approve") })
				tp.mustRun("destroy", "-auto-approve")
			})
			out = append(out, k)
		}
	}
	p.converge()
	// A change that adds api[2] runs longer than one that deletes it:
	// each gets the span of its own kind.
	p.write(tiersConfig("s1", 3))
	grow := measuredApply(p)
	p.write(tiersConfig("s2", 2))
	shrink := measuredApply(p)
	for i, f := range lane.changes {
		apis, span := 3, grow // api[2] is created, then deleted again
		if i%2 == 1 {
			apis, span = 2, shrink
		}
		k := &killTrial{name: fmt.Sprintf("change/%02.0f%%", f*100), span: span}
		k.passed = t.Run(fmt.Sprintf("change at %02.0f%%", f*100), func(t *testing.T) {
			tp := *p
			tp.t = t
			tp.write(tiersConfig(fmt.Sprintf("s%d", i+3), apis))
			killAndConverge(&tp, k, f, 2+apis, func() { tp.write(tiersConfig(fmt.Sprintf("s%d-again", i+3), apis)) })
		})
		out = append(out, k)
	}
	return out
}

// measuredApply runs apply to the end and returns how long it ran from
// its first step to its exit.
func measuredApply(p *project) time.Duration {
	p.t.Helper()
	run := p.launch("apply", "-auto-approve")
	if !run.waitLine(stepStarted, 1, 2*time.Minute) {
		out, code := run.wait(time.Minute)
		p.t.Fatalf("the apply started no step (exit %d):\n%s", code, out)
	}
	start := time.Now()
	if out, code := run.wait(3 * time.Minute); code != 0 {
		p.t.Fatalf("the measured apply exited %d:\n%s", code, out)
	}
	return time.Since(start)
}

// killAndConverge applies p's configuration, kills the apply frac of k's
// span after its first step started, and checks what it left: the state
// parses, the next plan knows every container, and the next apply
// converges to want instances. An apply that ended before the kill (the
// lab ran faster than when the span was measured) is tried once more,
// after again (which makes the next apply have work to do), with its own
// duration as the span.
func killAndConverge(p *project, k *killTrial, frac float64, want int, again func()) {
	t := p.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		run := p.launch("apply", "-auto-approve")
		if !run.waitLine(stepStarted, 1, 2*time.Minute) {
			out, code := run.wait(time.Minute)
			t.Fatalf("the apply started no step (exit %d):\n%s", code, out)
		}
		k.at = time.Duration(frac * float64(k.span))
		time.Sleep(k.at) // the moment of the kill, not an assertion
		run.signal(syscall.SIGKILL)
		out, code := run.wait(time.Minute)
		k.late = code != 128+int(syscall.SIGKILL)
		k.lastLine = strings.TrimSpace(lastLines(strings.TrimRight(out, "\n"), 1))
		t.Logf("killed %v after the first step (exit %d); its last lines:\n%s", k.at.Round(time.Millisecond), code, lastLines(out, 6))
		took, ok := applyDuration(out)
		if !k.late || attempt > 0 || !ok {
			break
		}
		t.Logf("the apply ended after %v, before the kill: once more, with that as the span", took)
		k.retried, k.span = true, took
		again()
	}
	p.stateOrNil() // parses, or was never written
	k.unrecorded = checkPlanKnowsEverything(p, tiersCounted)
	// converge also checks that the plan after it has no changes: every
	// container has the configuration's settings.
	p.converge()
	p.checkStateIsReality(tiersCounted)
	if st := p.state(); len(st.Instances) != want {
		t.Errorf("state has %v, want %d instances", st.Addresses(), want)
	}
}

// applyDuration reads the duration from apply's summary ("Apply
// complete! … in 7.1s.").
func applyDuration(out string) (time.Duration, bool) {
	i := strings.LastIndex(out, "Apply complete! ")
	if i < 0 {
		return 0, false
	}
	_, rest, ok := strings.Cut(out[i:], " in ")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSuffix(strings.Fields(rest)[0], "."))
	return d, err == nil
}

// fullStep is a JSON plan step with the container it acts on.
type fullStep struct {
	planStep
	OldContainerID string `json:"old_container_id"`
}

// checkPlanKnowsEverything runs plan -json and fails when it acts on an
// instance twice, creates an instance that already has a container, or
// ignores a container with the project's label that the state does not
// record (a container no one knows about would stay forever). It returns
// how many such unrecorded containers there were.
//
// An engine may still carry out the last request of the killed apply (a
// rename, a removal) while the plan probes it, so the plan is compared
// with the containers listed alike before and after it; the others are
// logged.
func checkPlanKnowsEverything(p *project, counted map[string]bool) int {
	t := p.t
	t.Helper()
	before := p.labelledContainers()
	out, code := p.runSplit("plan", "-json")
	if code != 0 {
		t.Fatalf("plan -json exited %d:\n%s", code, out)
	}
	var plan struct {
		Steps []fullStep `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan -json: %v\n%s", err, out)
	}
	recorded := map[string]bool{}
	if st := p.stateOrNil(); st != nil {
		for _, si := range st.Instances {
			recorded[si.ContainerID] = true
		}
	}
	stable := stableContainers(t, before, p.labelledContainers())
	has := map[string]string{}
	for _, c := range stable {
		if !strings.HasSuffix(c.name, "-dockplan-next") {
			has[c.address(counted)] = c.host + "/" + c.name
		}
	}
	acted := map[string]string{}
	var ids []string
	for _, s := range plan.Steps {
		ids = append(ids, s.ID)
		if s.Address == "" || s.Action == "delete" {
			continue
		}
		if prev, ok := acted[s.Address]; ok {
			t.Errorf("the plan acts on %s twice: %s and %s", s.Address, prev, s.ID)
		}
		acted[s.Address] = s.ID
		if where, ok := has[s.Address]; ok && s.Action == "create" {
			t.Errorf("the plan creates %s on %s, but it already exists as %s", s.Address, s.Host, where)
		}
	}
	unrecorded := 0
	var left []string
	for _, c := range stable {
		left = append(left, c.host+"/"+c.name+" ("+c.status+")")
		if recorded[c.id] {
			continue
		}
		unrecorded++
		known := false
		for _, s := range plan.Steps {
			known = known || (s.OldContainerID != "" && strings.HasPrefix(c.id, s.OldContainerID))
		}
		if !known {
			t.Errorf("the plan does nothing about %s on %s (%s), which the state does not record", c.name, c.host, c.status)
		}
	}
	t.Logf("left behind: %v; the next plan: %v", left, ids)
	return unrecorded
}

// stableContainers returns the containers listed alike (same host, ID
// and name) in before and after, and logs the others.
func stableContainers(t *testing.T, before, after []labelled) []labelled {
	t.Helper()
	key := func(c labelled) string { return c.host + "/" + c.id + "/" + c.name }
	was := map[string]bool{}
	for _, c := range before {
		was[key(c)] = true
	}
	var stable []labelled
	changed := map[string]bool{}
	for _, c := range after {
		if was[key(c)] {
			stable = append(stable, c)
			delete(was, key(c))
		} else {
			changed["now "+c.host+"/"+c.name] = true
		}
	}
	for k := range was {
		changed["was "+k] = true
	}
	if len(changed) > 0 {
		t.Logf("containers that changed while the plan was made (an engine finished a request of the killed apply): %v", slices.Sorted(maps.Keys(changed)))
	}
	return stable
}

// hostKillConfig is db pinned to host1, whose health check first runs 3s
// after it starts, and three app instances on distinct hosts that wait
// for it: their steps are pending for those seconds.
const hostKillConfig = `
container "db" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  placement {
    hosts = ["host1"]
  }
  health {
    command  = ["CMD", "/testapp", "-healthcheck"]
    interval = "3s"
    retries  = 3
  }
}

container "app" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 3
  ports        = ["8080"]
  link "db" {}
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  placement {
    distinct_hosts = true
  }
}
`

// TestHostKilledDuringApply kills host3's dockerd (SIGKILL, its containers
// go on) while an apply has a step on host3: once before that step starts,
// once while it runs. The other hosts' steps complete; host3's step fails
// naming host3 and its address; the state records nothing on host3; and
// once host3's dockerd runs again, the next apply converges (adopting or
// removing whatever the lost create left there).
func TestHostKilledDuringApply(t *testing.T) {
	l := labenv.RequireExclusive(t, 3)
	for _, tt := range []struct {
		name string
		// killAfter is the apply's output line after which host3 dies.
		killAfter string
	}{
		{name: "step pending", killAfter: "db: Creation complete"},
		{name: "step running", killAfter: "Creating... [host3]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := labProject(t, l, "e2ehk", hostKillConfig)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := l.Revive(ctx, "host3"); err != nil {
					t.Errorf("revive host3: %v", err)
				}
			})
			// The default -probe-timeout: a dead dockerd refuses at once,
			// and a short timeout would fail slow starts on the busy lab.
			run := p.launch("apply", "-auto-approve")
			if !run.waitLine(tt.killAfter, 1, time.Minute) {
				out, code := run.wait(time.Minute)
				t.Fatalf("no %q line (exit %d):\n%s", tt.killAfter, code, out)
			}
			killed := time.Now()
			if err := l.Kill(t.Context(), "host3", false); err != nil {
				t.Fatal(err)
			}
			out, code := run.wait(3 * time.Minute)
			t.Logf("apply with host3's dockerd killed after %q (the apply ended %v after the kill):\n%s", tt.killAfter, time.Since(killed).Round(time.Millisecond), out)
			onHost3 := checkHost3StepFailed(p, out, code, tt.name == "step running")
			if t.Failed() {
				t.FailNow() // the output is logged above
			}
			if err := l.Revive(t.Context(), "host3"); err != nil {
				t.Fatal(err)
			}
			out = p.converge()
			t.Logf("after host3's dockerd came back:\n%s", lastLines(out, 6))
			if si := p.state().Instances[onHost3]; si == nil || si.Host != "host3" {
				t.Errorf("after revive, %q (whose create on host3 failed) is not recorded on host3", onHost3)
			}
			p.checkStateIsReality(map[string]bool{"app": true})
		})
	}
}

// checkHost3StepFailed checks what an apply that lost host3's engine
// reports: exactly one failed step, on host3, naming its address, the
// others complete, nothing recorded on host3. A create that the engine
// finished before it died may have completed instead (mayComplete). It
// returns the address of the instance whose create went to host3.
func checkHost3StepFailed(p *project, out string, code int, mayComplete bool) string {
	t := p.t
	t.Helper()
	var failed []string
	onHost3 := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ": Failed after") {
			failed = append(failed, line)
		}
		if addr, ok := strings.CutSuffix(line, ": Creating... [host3]"); ok {
			onHost3 = addr
		}
	}
	if code == 0 && mayComplete && len(failed) == 0 {
		t.Logf("the create on host3 completed before its engine died")
		return onHost3
	}
	if code != 1 {
		t.Fatalf("apply exited %d, want 1 (host3's step failed)", code)
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "[host3]") || !strings.Contains(failed[0], "10.213.0.13") {
		t.Errorf("want exactly one failed step, on host3, naming its address; got %q", failed)
	}
	if !strings.Contains(out, "Apply incomplete: 3 created, 0 replaced, 0 deleted, 1 failed") {
		t.Errorf("apply summary is not 3 created (db and two app instances), 1 failed")
	}
	st := p.state()
	for _, addr := range st.Addresses() {
		if st.Instances[addr].Host == "host3" {
			t.Errorf("the state records %s on host3, where the step failed", addr)
		}
	}
	if len(st.Instances) != 3 {
		t.Errorf("state has %v, want db and two app instances", st.Addresses())
	}
	return onHost3
}

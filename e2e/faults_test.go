package e2e

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// probeTimeout bounds every engine call of the fault tests: a partitioned
// host times out instead of refusing.
const probeTimeout = "3s"

// TestRegistryImageIsPulled: a container whose image is in the lab
// registry, with the default image_source (registry), on hosts that lack
// the image, gets pull steps, and the apply pulls it and runs it.
func TestRegistryImageIsPulled(t *testing.T) {
	// Exclusive: it removes a tag from the hosts that another test could
	// be planning with at the same moment.
	l := labenv.RequireExclusive(t, 3)
	ref := l.RegistryImage
	restoreRegistryTag(t, l, ref)
	for _, h := range l.Hosts {
		c, err := h.Client(true)
		if err != nil {
			t.Fatal(err)
		}
		// Only this tag: the image stays on the host as dockplan-testapp:dev.
		if out, err := dockerCLI(t, h.Socket, "rmi", ref); err != nil && !strings.Contains(out, "No such image") {
			t.Fatalf("docker rmi %s on %s: %v: %s", ref, h.Name, err, out)
		}
		if id, err := c.ImageID(t.Context(), ref); err != nil || id != "" {
			t.Fatalf("%s still has %s (%q, %v)", h.Name, ref, id, err)
		}
		c.Close()
	}
	p := labProject(t, l, "e2epull", fmt.Sprintf(`
container "app" {
  image = %q
  count = 3
  ports = ["8080"]
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  placement {
    distinct_hosts = true
  }
}
`, ref))

	out := p.mustRun("apply", "-auto-approve")
	t.Logf("apply:\n%s", out)
	for _, h := range l.Hosts[:3] {
		if !strings.Contains(out, fmt.Sprintf("image %q will be pulled to %s", ref, h.Name)) {
			t.Errorf("the plan has no pull of %s to %s", ref, h.Name)
		}
		if !strings.Contains(out, "pull "+h.Name+" "+ref+": Pull complete") {
			t.Errorf("no completed pull step on %s", h.Name)
		}
	}
	if !strings.Contains(out, "Apply complete! 3 created, 0 replaced, 0 deleted, 3 pulled") {
		t.Errorf("apply summary is not 3 created, 3 pulled")
	}
	if t.Failed() {
		t.FailNow() // the output is logged above
	}
	p.checkStateIsReality(map[string]bool{"app": true})
	for _, h := range l.Hosts[:3] {
		c, _ := h.Client(true)
		id, err := c.ImageID(t.Context(), ref)
		c.Close()
		if err != nil || id == "" {
			t.Errorf("%s has no %s after the apply (%v)", h.Name, ref, err)
		}
	}
	if out, code := p.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the apply exited %d, want 0:\n%s", code, out)
	}
}

// restoreRegistryTag puts ref back, at the end of the test, exactly on the
// hosts that had it: pulled where it went missing, untagged where the test
// added it.
func restoreRegistryTag(t *testing.T, l *labenv.Lab, ref string) {
	t.Helper()
	had := map[string]bool{}
	for _, h := range l.Hosts {
		c, err := h.Client(true)
		if err != nil {
			t.Fatal(err)
		}
		id, err := c.ImageID(t.Context(), ref)
		c.Close()
		if err != nil {
			t.Fatalf("inspect %s on %s: %v", ref, h.Name, err)
		}
		had[h.Name] = id != ""
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, h := range l.Hosts {
			c, err := h.Client(true)
			if err != nil {
				continue
			}
			id, _ := c.ImageID(ctx, ref)
			switch {
			case had[h.Name] && id == "":
				if err := c.PullImage(ctx, ref); err != nil {
					t.Logf("restoring %s on %s: %v", ref, h.Name, err)
				}
			case !had[h.Name] && id != "":
				_ = c.RemoveImage(ctx, ref)
			}
			c.Close()
		}
	})
}

// partitionConfig is n instances of the test image, spread over the hosts,
// with a setting in env that a test changes to force replacements.
func partitionConfig(n int, setting string) string {
	return fmt.Sprintf(`
container "app" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = %d
  ports        = ["8080"]
  env = {
    SETTING = %q
  }
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`, n, setting)
}

// partition cuts the named lab host off until the test ends.
func partition(t *testing.T, l *labenv.Lab, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Heal(ctx, name); err != nil {
			t.Errorf("heal %s: %v", name, err)
		}
	})
	if err := l.Partition(t.Context(), name); err != nil {
		t.Fatal(err)
	}
}

// TestStalePlanNamesPartitionedHost: a plan saved while every host
// answered is refused once one of them stops answering, and the refusal
// names that host; nothing is created.
func TestStalePlanNamesPartitionedHost(t *testing.T) {
	l := labenv.RequireExclusive(t, 3)
	p := labProject(t, l, "e2estale", partitionConfig(3, "one"))
	out, code := p.run("plan", "-out", "tonight.plan", "-probe-timeout", probeTimeout)
	if code != 0 || !strings.Contains(out, "Plan: 3 to create") || !strings.Contains(out, "Host host3:") {
		t.Fatalf("plan -out exited %d, want 3 creates, one on host3:\n%s", code, out)
	}
	partition(t, l, "host3")
	out, code = p.run("apply", "-probe-timeout", probeTimeout, "tonight.plan")
	t.Logf("apply of the saved plan:\n%s", out)
	if code != 1 || !strings.Contains(out, "is stale") || !strings.Contains(out, "host3: no longer reachable") {
		t.Errorf("apply of the saved plan exited %d, want 1 refusing it as stale because host3 is unreachable:\n%s", code, out)
	}
	if got := p.labelledContainers(); len(got) != 0 {
		t.Errorf("the refused apply created containers: %v", got)
	}
}

// TestApplyAroundPartitionedHost: while host3 does not answer, apply
// places nothing there and leaves its instance alone (unchecked), carries
// out everything else, and says so; once host3 answers again, apply
// converges.
func TestApplyAroundPartitionedHost(t *testing.T) {
	l := labenv.RequireExclusive(t, 3)
	p := labProject(t, l, "e2epart", partitionConfig(3, "one"))
	counted := map[string]bool{"app": true}
	p.mustRun("apply", "-auto-approve", "-probe-timeout", probeTimeout)
	before := p.state()
	var onHost3 string
	for _, addr := range before.Addresses() {
		if before.Instances[addr].Host == "host3" {
			onHost3 = addr
		}
	}
	if onHost3 == "" {
		t.Fatalf("spread put no instance on host3: %v", before.Addresses())
	}

	// A new setting replaces every instance; two more instances are new.
	p.write(partitionConfig(5, "two"))
	partition(t, l, "host3")
	out, code := p.run("apply", "-auto-approve", "-probe-timeout", probeTimeout)
	t.Logf("apply with host3 partitioned:\n%s", out)
	if code != 0 {
		t.Fatalf("apply with host3 partitioned exited %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{
		"Warning: Host host3 is unreachable: nothing is placed there and its instances are not checked",
		"Apply complete! 2 created, 2 replaced, 0 deleted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q", want)
		}
	}
	if strings.Contains(out, "[host3]") {
		t.Errorf("apply acted on host3 while it was partitioned")
	}
	st := p.state()
	if len(st.Instances) != 5 {
		t.Errorf("state has %v, want 5 instances", st.Addresses())
	}
	for _, addr := range st.Addresses() {
		si := st.Instances[addr]
		switch {
		case addr == onHost3:
			if si.ContainerID != before.Instances[addr].ContainerID || si.Host != "host3" {
				t.Errorf("%s on partitioned host3 changed in the state: %+v", addr, si)
			}
		case si.Host == "host3":
			t.Errorf("%s was placed on partitioned host3", addr)
		case !slices.Contains(si.Spec.Env, "SETTING=two"):
			t.Errorf("%s on %s was not replaced: env %v", addr, si.Host, si.Spec.Env)
		}
	}
	if t.Failed() {
		t.FailNow() // the output is logged above
	}
	p.checkStateIsReality(counted)

	if err := l.Heal(t.Context(), "host3"); err != nil {
		t.Fatal(err)
	}
	out = p.converge("-probe-timeout", probeTimeout)
	if !strings.Contains(out, onHost3+": Replacement complete") || !strings.Contains(out, "[host3]") {
		t.Errorf("after heal, %s on host3 was not replaced:\n%s", onHost3, out)
	}
	if si := p.state().Instances[onHost3]; si == nil || !slices.Contains(si.Spec.Env, "SETTING=two") {
		t.Errorf("%s after heal: %+v", onHost3, si)
	}
	p.checkStateIsReality(counted)
}

// TestPartitionDuringApply cuts host3 off while an apply is running and
// its step on host3 is still waiting: that step fails naming host3, the
// other hosts' steps complete, the state records exactly what exists, and
// after heal the next apply converges.
func TestPartitionDuringApply(t *testing.T) {
	l := labenv.RequireExclusive(t, 3)
	// db's health check first runs 4s after it starts; every app instance
	// waits for it, so the app steps are pending for those seconds.
	p := labProject(t, l, "e2emid", `
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
    interval = "4s"
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
`)
	counted := map[string]bool{"app": true}
	run := p.launch("apply", "-auto-approve", "-probe-timeout", probeTimeout)
	if !run.waitLine("db: Creation complete", 1, time.Minute) {
		out, code := run.wait(time.Minute)
		t.Fatalf("db was not created (exit %d):\n%s", code, out)
	}
	partition(t, l, "host3")
	out, code := run.wait(3 * time.Minute)
	t.Logf("apply partitioned in the middle:\n%s", out)
	if code != 1 {
		t.Fatalf("apply exited %d, want 1 (host3's step failed):\n%s", code, out)
	}
	var failed []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ": Failed after") {
			failed = append(failed, line)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "[host3]") || !strings.Contains(failed[0], "host3") || !strings.Contains(failed[0], "10.213.0.13") {
		t.Errorf("want exactly one failed step, on host3, naming it and its address; got %q", failed)
	}
	if !strings.Contains(out, "Apply incomplete: 3 created, 0 replaced, 0 deleted, 1 failed") {
		t.Errorf("apply summary is not 3 created (db and two app instances), 1 failed")
	}
	if t.Failed() {
		t.FailNow() // the output is logged above
	}
	st := p.state()
	for _, addr := range st.Addresses() {
		if st.Instances[addr].Host == "host3" {
			t.Errorf("the state records %s on host3, where nothing could be created", addr)
		}
	}
	if len(st.Instances) != 3 {
		t.Errorf("state has %v, want db and two app instances", st.Addresses())
	}
	p.checkStateIsReality(counted)

	if err := l.Heal(t.Context(), "host3"); err != nil {
		t.Fatal(err)
	}
	// The create that timed out may still reach host3's engine after the
	// heal (the kernel retransmits the request), leaving a created
	// container under that instance's name: the next apply either adopts
	// and starts it or, when it lands after the probe, removes it and
	// creates the instance again. Either way an app instance runs on
	// host3 (distinct_hosts puts one on each host).
	out = p.converge("-probe-timeout", probeTimeout)
	if !strings.Contains(out, "Apply complete!") || !strings.Contains(out, "[host3]") {
		t.Errorf("after heal, the apply did not bring up the missing instance on host3:\n%s", out)
	}
	onHost3 := 0
	for _, si := range p.state().Instances {
		if si.Container == "app" && si.Host == "host3" {
			onHost3++
		}
	}
	if onHost3 != 1 {
		t.Errorf("after heal, %d app instances are recorded on host3, want 1", onHost3)
	}
	p.checkStateIsReality(counted)
}

// interruptConfig has a db whose health check passes about a second after
// it starts, four app instances that wait for it, and two workers that
// wait for nothing: an apply of it takes a few seconds.
const interruptConfig = `
container "db" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  env = {
    SETTING = "one"
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

container "app" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 4
  ports        = ["8080"]
  env = {
    SETTING = "one"
  }
  link "db" {}
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}

container "worker" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 2
  env = {
    SETTING = "one"
  }
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`

var interruptCounted = map[string]bool{"app": true, "worker": true}

// TestInterruptedApplyConverges: SIGINT a moment after the first
// "Creating..." ends apply with exit code 130 and a state that parses, and
// the next apply converges without any duplicate container.
func TestInterruptedApplyConverges(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2eint", interruptConfig)
	run := p.launch("apply", "-auto-approve")
	if !run.waitLine("Creating...", 1, time.Minute) {
		out, code := run.wait(time.Minute)
		t.Fatalf("no step started (exit %d):\n%s", code, out)
	}
	time.Sleep(100 * time.Millisecond) // "a moment after": steps are in flight
	run.signal(os.Interrupt)
	out, code := run.wait(2 * time.Minute)
	t.Logf("interrupted apply:\n%s", out)
	if code != 130 || !strings.Contains(out, "Interrupted.") {
		t.Fatalf("interrupted apply exited %d, want 130 saying Interrupted:\n%s", code, out)
	}
	if strings.Contains(out, "Apply complete!") {
		t.Errorf("an interrupted apply says it completed:\n%s", out)
	}
	p.stateOrNil() // parses, or was never written
	checkNoDuplicatePlan(t, p)
	p.converge()
	p.checkStateIsReality(interruptCounted)
}

// checkNoDuplicatePlan fails when the plan would create an instance that
// already has a container on some host (found by the project's labels):
// such a container must be adopted, started or replaced, never doubled.
func checkNoDuplicatePlan(t *testing.T, p *project) {
	t.Helper()
	have := map[string]string{}
	var found []string
	for _, c := range p.labelledContainers() {
		found = append(found, c.name+" ("+c.status+")")
		if !strings.HasSuffix(c.name, "-dockplan-next") {
			have[c.address(interruptCounted)] = c.host + "/" + c.name
		}
	}
	recorded := []string{}
	if st := p.stateOrNil(); st != nil {
		recorded = st.Addresses()
	}
	steps := p.planSteps()
	var ids []string
	for _, s := range steps {
		ids = append(ids, s.ID)
	}
	t.Logf("left behind: containers %v; state records %v; the next plan: %v", found, recorded, ids)
	seen := map[string]string{}
	for _, s := range steps {
		if s.Address == "" || s.Action == "delete" {
			continue
		}
		if prev, ok := seen[s.Address]; ok {
			t.Errorf("the plan acts on %s twice: %s and %s", s.Address, prev, s.ID)
		}
		seen[s.Address] = s.ID
		if where, ok := have[s.Address]; ok && s.Action == "create" {
			t.Errorf("the plan creates %s on %s, but it already exists as %s", s.Address, s.Host, where)
		}
	}
}

// inspectEnv returns a container's environment, one variable a line.
func inspectEnv(t *testing.T, l *labenv.Lab, c labelled) string {
	t.Helper()
	h, err := l.Host(c.host)
	if err != nil {
		t.Fatal(err)
	}
	out, err := dockerCLI(t, h.Socket, "inspect", "--format", `{{range .Config.Env}}{{println .}}{{end}}`, c.id)
	if err != nil {
		t.Fatalf("inspect %s: %v: %s", c.name, err, out)
	}
	return out
}

// dockerCLI runs the docker command against the engine at endpoint and
// returns its combined output.
func dockerCLI(t *testing.T, endpoint string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := osexec.CommandContext(ctx, "docker", append([]string{"-H", endpoint}, args...)...).CombinedOutput()
	return string(out), err
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

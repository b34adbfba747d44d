package e2e

import (
	"encoding/json"
	"fmt"
	osexec "os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/lab/labenv"
)

// containerIDs lists the IDs of the project's labelled containers.
func containerIDs(p *project) []string {
	p.t.Helper()
	var ids []string
	for _, c := range p.labelledContainers() {
		ids = append(ids, c.host+"/"+c.name+"/"+c.id)
	}
	return ids
}

// applyStale applies the saved plan file and checks that it is refused as
// stale for every reason in whys, changing nothing on the hosts.
func applyStale(p *project, file string, whys ...string) {
	t := p.t
	t.Helper()
	before := containerIDs(p)
	out, code := p.run("apply", file)
	t.Logf("apply of the saved plan:\n%s", out)
	if code != 1 || !strings.Contains(out, "is stale, so nothing was applied") {
		t.Errorf("apply of the saved plan exited %d, want 1 refusing it as stale", code)
	}
	for _, why := range whys {
		if !strings.Contains(out, why) {
			t.Errorf("the refusal does not say %q", why)
		}
	}
	if strings.Contains(out, stepStarted) {
		t.Errorf("the refused apply started steps")
	}
	if after := containerIDs(p); !slices.Equal(before, after) {
		t.Errorf("the refused apply changed the containers: %v, then %v", before, after)
	}
}

// TestStalePlanAfterAnotherApply: a plan saved before another apply ran
// is refused, naming the state serial it was made from and the one it
// finds, and what changed on the hosts.
func TestStalePlanAfterAnotherApply(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2esa", partitionConfig(2, "one"))
	p.converge()
	serial := p.state().Serial
	p.write(partitionConfig(3, "one"))
	if out := p.mustRun("plan", "-out", "grow.plan"); !strings.Contains(out, "Plan: 1 to create") {
		t.Fatalf("plan -out does not create app[2]:\n%s", out)
	}
	// Another operator shrinks the project meanwhile.
	p.write(partitionConfig(1, "one"))
	p.mustRun("apply", "-auto-approve")
	app1 := fmt.Sprintf("%s-app-1", p.name)
	applyStale(p, "grow.plan",
		fmt.Sprintf("state serial %d → %d (another apply ran since)", serial, p.state().Serial),
		app1+" was removed outside dockplan")
	p.checkStateIsReality(map[string]bool{"app": true})
}

// TestStalePlanAfterHandChanges: a plan saved before a container was
// removed by hand and another stopped by hand is refused naming both,
// and creates nothing; a new plan then repairs everything.
func TestStalePlanAfterHandChanges(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	counted := map[string]bool{"app": true}
	p := labProject(t, l, "e2esh", partitionConfig(2, "one"))
	p.converge()
	p.write(partitionConfig(3, "one"))
	p.mustRun("plan", "-out", "grow.plan")
	st := p.state()
	removed, stopped := st.Instances["app[0]"], st.Instances["app[1]"]
	p.dockerOn(removed, "rm", "-f", removed.ContainerID)
	p.dockerOn(stopped, "stop", stopped.ContainerID)
	applyStale(p, "grow.plan",
		removed.Host+": "+removed.Name+" was removed outside dockplan",
		stopped.Host+": "+stopped.Name+" is now exited (was running)")
	out := p.converge()
	if !strings.Contains(out, "Apply complete! 2 created, 0 replaced, 0 deleted, 1 started") {
		t.Errorf("the apply after a new plan did not re-create app[0], create app[2] and start app[1]:\n%s", out)
	}
	p.checkStateIsReality(counted)
}

// planHost is a host of plan -json: capacity and allocations in bytes.
type planHost struct {
	Name     string `json:"name"`
	Capacity struct {
		MemoryBytes int64 `json:"memory_bytes"`
	} `json:"capacity"`
	Before struct {
		MemoryBytes int64 `json:"memory_bytes"`
	} `json:"allocated_before"`
}

// TestStalePlanWhenRoomTaken: a plan saved while host1 had room for app
// is refused once a container started by hand (not the project's) takes
// that room, naming the host, the resource and what is free; the same
// plan applies once the other container leaves enough room. (A changed
// capacity of the engine or of the host block is in the fingerprint too,
// but the lab cannot change an engine's, and a saved plan keeps the
// configuration it was made from.)
func TestStalePlanWhenRoomTaken(t *testing.T) {
	// Exclusive: the test counts on nobody else starting containers on
	// host1 between its plan and its apply.
	l := labenv.RequireExclusive(t, 3)
	p := labProject(t, l, "e2esr", `
container "app" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  resources {
    cpu    = 0.05
    memory = "128MiB"
  }
  placement {
    hosts = ["host1"]
  }
}
`)
	p.mustRun("plan", "-out", "app.plan")
	out, code := p.runSplit("plan", "-json")
	var plan struct {
		Hosts []planHost `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 0 || err != nil {
		t.Fatalf("plan -json exited %d (%v):\n%s", code, err, out)
	}
	var host1 planHost
	for _, h := range plan.Hosts {
		if h.Name == "host1" {
			host1 = h
		}
	}
	free := host1.Capacity.MemoryBytes - host1.Before.MemoryBytes
	h1, err := l.Host("host1")
	if err != nil {
		t.Fatal(err)
	}
	// The other container is no one's: its reservation stays until it is
	// removed, and would crowd every later test off host1.
	name := p.name + "-hog"
	t.Cleanup(func() {
		// Not dockerCLI: the test's context is done by now.
		if out, err := osexec.Command("docker", "-H", h1.Socket, "rm", "-f", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such container") {
			t.Errorf("removing the other container %s: %v: %s", name, err, out)
		}
	})
	hog := func(leave int64) {
		_, _ = dockerCLI(t, h1.Socket, "rm", "-f", name)
		if out, err := dockerCLI(t, h1.Socket, "run", "-d", "--name", name, "--memory", fmt.Sprint(free-leave), labenv.TestImage); err != nil {
			t.Fatalf("docker run the other container: %v: %s", err, out)
		}
	}
	hog(64 << 20)
	applyStale(p, "app.plan", "host1: the plan adds 128MiB of memory there, but other containers took the room: 64MiB free now")
	hog(512 << 20)
	out = p.mustRun("apply", "app.plan")
	if !strings.Contains(out, "Apply complete! 1 created") {
		t.Errorf("the saved plan, with room for it again, did not create app:\n%s", out)
	}
	p.checkStateIsReality(nil)
}

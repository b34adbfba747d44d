package e2e

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// TestRescheduleAfterHostKilled kills the lab host that runs api (its
// dockerd, shims and containers: a dead host) while `reconcile -daemon
// -reschedule-after 5s` runs: api and the worker there run on the other
// hosts, web (on host1, linked to api) is re-created with api's new
// address, and the state says so. When the host is revived its engine
// restarts the old containers; the daemon removes those stale copies, so
// no instance runs twice, and a plan afterwards has nothing to do.
func TestRescheduleAfterHostKilled(t *testing.T) {
	l := labenv.RequireExclusive(t, 3)
	p := labProject(t, l, "e2eresched", `
container "api" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  ports        = ["8080"]
  restart      = "unless-stopped"
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  placement {
    hosts = ["host2", "host3"]
  }
}

container "web" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  restart      = "unless-stopped"
  link "api" {}
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  placement {
    hosts = ["host1"]
  }
}

container "worker" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 3
  restart      = "unless-stopped"
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`)
	counted := map[string]bool{"worker": true}
	p.converge("-probe-timeout", probeTimeout)
	before := p.state()
	lost := before.Instances["api"].Host
	var onLost []string
	for _, addr := range before.Addresses() {
		if before.Instances[addr].Host == lost {
			onLost = append(onLost, addr)
		}
	}
	webBefore := before.Instances["web"]

	d := p.startReconcileDaemon("-reschedule-after", "5s", "-probe-timeout", probeTimeout)
	revived := false
	t.Cleanup(func() {
		if !revived {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = l.Revive(ctx, lost)
		}
	})
	if err := l.Kill(t.Context(), lost, true); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	d.waitLog("host unreachable; its instances move to other hosts if it does not answer in time", lost)
	line := d.waitLog("rescheduled", "")
	t.Logf("rescheduled %v %.1fs after the kill: %v", onLost, time.Since(killed).Seconds(), line)

	after := p.state()
	for _, addr := range after.Addresses() {
		if after.Instances[addr].Host == lost {
			t.Errorf("%s is still recorded on %s", addr, lost)
		}
	}
	for _, addr := range onLost {
		inst := after.Instances[addr]
		if inst == nil {
			t.Fatalf("%s left the state", addr)
		}
		if c, ok := p.inspectInstance(inst); !ok || !c.State.Running {
			t.Errorf("%s is recorded on %s but does not run there", addr, inst.Host)
		}
	}
	api, web := after.Instances["api"], after.Instances["web"]
	if web.ContainerID == webBefore.ContainerID {
		t.Errorf("web (linked to api) was not re-created for api's new address")
	}
	if want := "API_HOST=" + api.HostAddress; !slices.Contains(web.Spec.Env, want) {
		t.Errorf("web's env %v lacks %s (api now on %s)", web.Spec.Env, want, api.Host)
	}
	if c, ok := p.inspectInstance(web); !ok || !c.State.Running {
		t.Errorf("web does not run after its re-create")
	}

	// The host comes back; after a power loss its engine restarts the
	// old containers. The daemon removes them.
	if err := l.Revive(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	revived = true
	deadline := time.Now().Add(time.Minute)
	for {
		var stale []string
		for _, c := range p.labelledContainers() {
			if c.host == lost {
				stale = append(stale, c.name+" "+c.status)
			}
		}
		if len(stale) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has %v a minute after it was revived; daemon log:\n%s", lost, stale, strings.Join(d.raw, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.waitLog("removed stale copy", lost)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit within 30s of SIGTERM")
	}
	p.checkStateIsReality(counted)
	if out, code := p.run("plan", "-detailed-exitcode", "-probe-timeout", probeTimeout); code != 0 {
		t.Errorf("plan after the host returned exited %d, want 0 (no changes):\n%s", code, out)
	}
}

package probetest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/probe"
)

// hangGuard is a generous bound on a probe with -probe-timeout 2s: it
// catches a hang without asserting on wall-clock time.
const hangGuard = 30 * time.Second

// A partitioned host is reported unreachable once the probe timeout has
// passed, naming the host; the others are still probed; `hosts` exits 1
// with the table printed.
func TestHostsReportsPartitionedHostUnreachable(t *testing.T) {
	lab := labenv.RequireExclusive(t, 3)
	victim := lab.Hosts[1]
	dir := writeConfig(t, uniqueName(t, "probetest"), lab.HCL())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := lab.Heal(ctx, victim.Name); err != nil {
			t.Errorf("heal %s: %v", victim.Name, err)
		}
	})
	if err := lab.Partition(t.Context(), victim.Name); err != nil {
		t.Fatal(err)
	}

	res := runDockplan(t, dir, nil, "hosts", "-probe-timeout", "2s")
	if res.code != 1 || res.elapsed > hangGuard {
		t.Fatalf("hosts with %s partitioned: want exit 1 well within %v; got %s", victim.Name, hangGuard, res)
	}
	wantContains(t, "stderr", res.stderr, "Error: 1 of 3 hosts did not answer")
	rows := 0
	for _, line := range strings.Split(res.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[1], "tcp://") { // table rows only
			continue
		}
		rows++
		want := "yes"
		if f[0] == victim.Name {
			want = "no"
		}
		if f[2] != want {
			t.Errorf("%s reachable = %s, want %s:\n%s", f[0], f[2], want, res.stdout)
		}
	}
	if rows != 3 {
		t.Errorf("the table has %d host rows, want 3:\n%s", rows, res.stdout)
	}
	wantContains(t, "stdout", res.stdout,
		victim.Name+` is unreachable: host "`+victim.Name+`"`, victim.TCPAddress, "within 2s")

	res = runDockplan(t, dir, nil, "hosts", "-json", "-probe-timeout", "2s")
	if res.code != 1 || res.elapsed > hangGuard {
		t.Fatalf("hosts -json with %s partitioned: %s", victim.Name, res)
	}
	snap := res.snapshot(t)
	for _, h := range snap.Hosts {
		if partitioned := h.Name == victim.Name; h.Reachable == partitioned {
			t.Errorf("%s: reachable %v (error %q), partitioned %v", h.Name, h.Reachable, h.Error, partitioned)
		}
	}
	if h := snap.Host(victim.Name); h.Engine != nil || !strings.Contains(h.Error, `host "`+victim.Name+`"`) {
		t.Errorf("%s: engine %+v error %q; want no engine and an error naming the host", victim.Name, h.Engine, h.Error)
	}
}

// partitionAfterList is an engine that partitions its lab host as soon as
// the container list has been read, so that every inspect of the probe
// meets a host that has stopped answering. It counts the inspects.
type partitionAfterList struct {
	engine.Engine
	lab      *labenv.Lab
	host     string
	inspects atomic.Int64
}

func (p *partitionAfterList) ListContainers(ctx context.Context, opts engine.ListOptions) ([]engine.ContainerSummary, error) {
	list, err := p.Engine.ListContainers(ctx, opts)
	if perr := p.lab.Partition(ctx, p.host); perr != nil {
		return nil, perr
	}
	return list, err
}

func (p *partitionAfterList) InspectContainer(ctx context.Context, ref string) (engine.Container, error) {
	p.inspects.Add(1)
	return p.Engine.InspectContainer(ctx, ref)
}

// A host that stops answering in the middle of a probe is reported
// unreachable after one timeout: the first failed inspect ends the host's
// probe, instead of every queued inspect waiting out its own deadline in
// turn (containers / concurrency × timeout).
func TestProbeStopsAtHostLostMidProbe(t *testing.T) {
	const running, concurrency = 24, 4
	lab := labenv.RequireExclusive(t, 1)
	h := lab.Hosts[0]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := lab.Heal(ctx, h.Name); err != nil {
			t.Errorf("heal %s: %v", h.Name, err)
		}
	})
	sock, err := engine.Dial(t.Context(), engine.Endpoint{HostName: h.Name, Address: h.Socket, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	run := uniqueName(t, "midprobe")
	t.Cleanup(func() {
		if err := removeLabelled(sock, run); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	if err := startMany(t.Context(), sock, run, running); err != nil {
		t.Fatal(err)
	}

	cfg := loadConfig(t, t.TempDir(), fmt.Sprintf("project = %q\n%s", uniqueName(t, "probetest"), h.HCL()))
	var wrapped *partitionAfterList
	dial := func(ctx context.Context, ep engine.Endpoint) (engine.Engine, error) {
		eng, err := engine.Dial(ctx, ep)
		if err != nil {
			return nil, err
		}
		wrapped = &partitionAfterList{Engine: eng, lab: lab, host: h.Name}
		return wrapped, nil
	}
	start := time.Now()
	snap := probe.Probe(t.Context(), cfg, probe.Options{Timeout: 2 * time.Second, InspectConcurrency: concurrency, Dial: dial})
	elapsed := time.Since(start)
	f := snap.Host(h.Name)
	if f.Reachable || !strings.Contains(f.Error, `host "`+h.Name+`"`) || elapsed > hangGuard {
		t.Fatalf("%s lost mid-probe: reachable %v, error %q, after %v; want unreachable naming the host", h.Name, f.Reachable, f.Error, elapsed)
	}
	t.Logf("%s: %s (after %v)", h.Name, f.Error, elapsed.Round(time.Millisecond))
	if n := wrapped.inspects.Load(); n > concurrency {
		t.Errorf("%d inspects were sent to a host that had stopped answering; want at most the %d in flight when it stopped", n, concurrency)
	}
}

package probetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
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

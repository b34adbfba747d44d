package reconcile

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// TestDaemonReschedulesLostHost: with RescheduleAfter, a host whose event
// stream stays open but that stops answering is found out by the
// heartbeat; once it has been down for RescheduleAfter, Reschedule is
// called for it under the state lock; when it answers again, the copy it
// still runs of the moved instance is removed, and nothing else is.
func TestDaemonReschedulesLostHost(t *testing.T) {
	w := newWorld(t, "node1", "node2", "node3")
	w.add("web", 0, "node1", instanceOptions{})
	old := w.add("web", 1, "node2", instanceOptions{})
	w.save()
	node2 := w.fakes["node2"]

	var mu sync.Mutex
	var calls [][]string
	moved := make(chan struct{}, 1)
	backend := state.NewFile(w.path) // another process's view
	var r *Reconciler
	reschedule := func(ctx context.Context, st *state.State, lost []string) (*state.State, error) {
		mu.Lock()
		calls = append(calls, lost)
		mu.Unlock()
		lctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := backend.Lock(lctx, state.NewLockInfo("test"))
		cancel()
		if err == nil {
			t.Error("Reschedule was called without the state lock held")
		}
		for _, addr := range st.Addresses() {
			inst := st.Instances[addr]
			if !slices.Contains(lost, inst.Host) {
				continue
			}
			c, err := createAndStart(ctx, w.fakes["node3"], inst.Spec)
			if err != nil {
				return nil, err
			}
			inst.Host, inst.ContainerID, inst.Ports = "node3", c.ID, c.Ports
		}
		st.Serial++
		if err := r.opts.Backend.Save(ctx, st); err != nil { // the backend holding the lock
			return nil, err
		}
		moved <- struct{}{}
		return st, nil
	}
	dial := func(ctx context.Context, host string) (engine.Engine, error) {
		eng, err := w.dial(ctx, host)
		if host == "node2" && err == nil {
			return silentEvents{node2}, nil // a cut cable: the stream says nothing
		}
		return eng, err
	}
	m := NewMetrics()
	r = w.reconciler(Options{Dial: dial, Metrics: m, RescheduleAfter: 10 * time.Second, Reschedule: reschedule,
		Hosts: []string{"node1", "node2", "node3"}})
	start := w.clock.Now()
	w.startDaemon(r, "node1", "node2", "node3")

	node2.SetUnreachable(true)
	w.clock.waitTimerAt(t, start.Add(2500*time.Millisecond)) // the heartbeats
	w.clock.Advance(2500 * time.Millisecond)
	w.logs.waitFor(t, 1, "host unreachable", "host=node2", "reschedule_after=10s")
	w.clock.waitTimerAt(t, start.Add(12500*time.Millisecond))
	select {
	case <-moved:
		t.Fatal("rescheduled before the host was down for RescheduleAfter")
	default:
	}
	w.clock.Advance(10 * time.Second)
	select {
	case <-moved:
	case <-time.After(10 * time.Second):
		t.Fatalf("no reschedule within 10s; logs:\n%s", w.logs)
	}
	w.logs.waitFor(t, 1, "rescheduled", "moved=1")
	mu.Lock()
	if len(calls) != 1 || !slices.Equal(calls[0], []string{"node2"}) {
		t.Errorf("Reschedule calls = %v, want one for node2", calls)
	}
	mu.Unlock()
	if got := toFloat64(t, m.reschedules.WithLabelValues("node2", "ok")); got != 1 {
		t.Errorf("reschedules_total{node2,ok} = %v", got)
	}
	if st := w.stored(); st.Instances["web[1]"].Host != "node3" {
		t.Fatalf("web[1] is recorded on %s, want node3", st.Instances["web[1]"].Host)
	}

	// node2 answers again, still running its copy of web[1].
	if !slices.ContainsFunc(node2.Containers(), func(c engine.Container) bool { return c.Name == old.Name && c.Running() }) {
		t.Fatalf("the fake lost node2's container meanwhile")
	}
	node2.SetUnreachable(false)
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := w.logs.count("removed stale copy"); n == 0; n, _ = w.logs.count("removed stale copy") {
		if time.Now().After(deadline) {
			t.Fatalf("the stale copy on node2 was not removed; logs:\n%s", w.logs)
		}
		w.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	w.logs.waitFor(t, 1, "removed stale copy", "address=web[1]", "host=node2", "runs_on=node3")
	if _, ok := w.container("node2", old.Name); ok {
		t.Error("node2 still has its copy of web[1]")
	}
	if c, ok := w.container("node3", old.Name); !ok || !c.Running() {
		t.Error("web[1] does not run on node3 any more")
	}
	if c, ok := w.container("node1", "shop-web-0"); !ok || !c.Running() {
		t.Error("web[0] on node1 was touched")
	}
	if got := toFloat64(t, m.staleRemoved.WithLabelValues("node2")); got != 1 {
		t.Errorf("stale_removed_total{node2} = %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Errorf("Reschedule was called %d times, want once", len(calls))
	}
}

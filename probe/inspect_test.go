package probe_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
	"github.com/dockplan/dockplan/probe"
)

// The first failed inspect ends the host's probe: the inspects in flight
// are cancelled and the queued ones never sent, so a host lost in the
// middle of a probe costs one timeout, not one per container. The error
// reported is that first failure, not the cancellations it caused.
func TestProbeStopsAtFirstInspectFailure(t *testing.T) {
	const running, concurrency = 40, 4
	cfg := loadConfig(t, twoHosts)
	node1, node2 := enginefake.New("node1"), enginefake.New("node2")
	for i := range running {
		node1.AddContainer(engine.ContainerSpec{Name: fmt.Sprintf("c%d", i), Image: "x"}, engine.StateRunning)
	}
	node1.Fail(enginefake.MethodInspectContainer, engine.NewError("node1", "inspect container", "", engine.ErrUnreachable, errors.New("no answer within 10s")))
	snap := probe.Probe(t.Context(), cfg, probe.Options{Dial: fakes(node1, node2), InspectConcurrency: concurrency})
	h1 := snap.Host("node1")
	if h1.Reachable || !strings.Contains(h1.Error, "no answer within 10s") {
		t.Errorf("node1: reachable %v, error %q; want the inspect failure", h1.Reachable, h1.Error)
	}
	if n := node1.CallCount(enginefake.MethodInspectContainer); n > concurrency {
		t.Errorf("%d inspects sent after the first failed; want at most %d (those in flight)", n, concurrency)
	}
	if n := node1.CallCount(enginefake.MethodImageInspect); n != 0 {
		t.Errorf("%d image inspects after a failed host; want none", n)
	}
	if !snap.Host("node2").Reachable {
		t.Errorf("node2 must still be probed")
	}
}

// A container removed between the list and its inspect holds nothing and
// does not fail the probe.
func TestProbeSkipsContainerGoneBeforeInspect(t *testing.T) {
	cfg := loadConfig(t, twoHosts)
	node1, node2 := enginefake.New("node1"), enginefake.New("node2")
	node1.AddContainer(engine.ContainerSpec{Name: "stays", Image: "x", Resources: engine.Resources{Memory: 64 << 20}}, engine.StateRunning)
	node1.AddContainer(engine.ContainerSpec{Name: "goes", Image: "x", Resources: engine.Resources{Memory: 32 << 20}}, engine.StateRunning)
	node1.FailOnce(enginefake.MethodInspectContainer, engine.NewError("node1", "inspect container", "goes", engine.ErrNotFound, nil))
	snap := probe.Probe(t.Context(), cfg, probe.Options{Dial: fakes(node1, node2), InspectConcurrency: 1})
	h1 := snap.Host("node1")
	if !h1.Reachable {
		t.Fatalf("node1 unreachable: %s", h1.Error)
	}
	// One of the two inspects saw "not found": only the other one counts.
	if got := h1.Allocated.MemoryBytes; got != 64<<20 && got != 32<<20 {
		t.Errorf("allocated memory = %d, want one container's limit", got)
	}
	if h1.Unbounded != 0 {
		t.Errorf("unbounded = %d, want 0: a vanished container is not unbounded", h1.Unbounded)
	}
}

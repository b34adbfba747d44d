package probe_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/engine/enginefake"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
	"github.com/google/go-cmp/cmp"
)

const twoHosts = `
project = "shop"
host "node1" {
  address = "unix:///fake/node1.sock"
  labels  = { disk = "ssd" }
  capacity {
    cpu    = 2
    memory = "4GiB"
  }
  reserve {
    cpu    = 0.5
    memory = "1GiB"
  }
}
host "node2" {
  address = "unix:///fake/node2.sock"
}
container "web" {
  image = "shop/web:1"
  count = 2
  ports = ["8080"]
}
container "db" {
  image = "postgres:16"
}
`

func loadConfig(t *testing.T, src string) *hclspec.Config {
	t.Helper()
	cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"t.dockplan.hcl": []byte(src)}, hclspec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

// fakes dials the fake engine named by the endpoint's host.
func fakes(fs ...*enginefake.Fake) probe.Dialer {
	byName := map[string]*enginefake.Fake{}
	for _, f := range fs {
		byName[f.HostName()] = f
	}
	return func(ctx context.Context, ep engine.Endpoint) (engine.Engine, error) {
		f := byName[ep.HostName]
		if _, err := f.Info(ctx); err != nil {
			return nil, err
		}
		return f, nil
	}
}

func TestProbeCapacityAndAllocation(t *testing.T) {
	cfg := loadConfig(t, twoHosts)
	node1, node2 := enginefake.New("node1"), enginefake.New("node2")
	node1.AddImage("shop/web:1")
	// A bounded container of another project, an unbounded one, a stopped
	// one (holds nothing) and one of ours.
	node1.AddContainer(engine.ContainerSpec{Name: "other", Image: "x", Resources: engine.Resources{NanoCPUs: 5e8, Memory: 256 << 20}}, engine.StateRunning)
	node1.AddContainer(engine.ContainerSpec{Name: "free-for-all", Image: "x"}, engine.StateRunning)
	node1.AddContainer(engine.ContainerSpec{Name: "stopped", Image: "x", Resources: engine.Resources{Memory: 1 << 30}}, engine.StateExited)
	node1.AddContainer(engine.ContainerSpec{
		Name: "shop-web-0", Image: "shop/web:1",
		Labels:    map[string]string{probe.LabelProject: "shop", probe.LabelContainer: "web", probe.LabelIndex: "0", probe.LabelConfigHash: "abc"},
		Resources: engine.Resources{CPUQuota: 25000, CPUPeriod: 100000, MemoryReservation: 128 << 20},
	}, engine.StateRunning)

	snap := probe.Probe(t.Context(), cfg, probe.Options{Dial: fakes(node1, node2)})
	h1 := snap.Host("node1")
	if !h1.Reachable {
		t.Fatalf("node1 unreachable: %s", h1.Error)
	}
	want := map[string]probe.Resources{
		"total":     {MilliCPU: 2000, MemoryBytes: 4 << 30},
		"reserved":  {MilliCPU: 500, MemoryBytes: 1 << 30},
		"capacity":  {MilliCPU: 1500, MemoryBytes: 3 << 30},
		"allocated": {MilliCPU: 750, MemoryBytes: 384 << 20},
		"free":      {MilliCPU: 750, MemoryBytes: 3<<30 - 384<<20},
	}
	got := map[string]probe.Resources{"total": h1.Total, "reserved": h1.Reserved, "capacity": h1.Capacity, "allocated": h1.Allocated, "free": h1.Free}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node1 figures (-want +got):\n%s", diff)
	}
	if h1.Unbounded != 1 || h1.Running != 3 || h1.AllContainers != 4 {
		t.Errorf("unbounded %d running %d all %d, want 1 3 4", h1.Unbounded, h1.Running, h1.AllContainers)
	}
	if len(h1.Managed) != 1 || h1.Managed[0].Container != "web" || h1.Managed[0].Index != 0 || h1.Managed[0].ConfigHash != "abc" {
		t.Errorf("managed = %+v", h1.Managed)
	}
	if !h1.Images["shop/web:1"].Present || h1.Images["postgres:16"].Present {
		t.Errorf("images = %+v", h1.Images)
	}
	// Host labels for placement come from the host block only.
	if h1.Labels["disk"] != "ssd" {
		t.Errorf("labels = %v", h1.Labels)
	}
	// 1 ping + info + networks (no public address) + list + 3 inspects + 2 images.
	if h1.APICalls != 9 {
		t.Errorf("api calls = %d, want 9", h1.APICalls)
	}
	h2 := snap.Host("node2")
	if h2.Total != (probe.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30}) || h2.Capacity != h2.Total {
		t.Errorf("node2 figures: total %+v capacity %+v", h2.Total, h2.Capacity)
	}
}

func TestProbeUnreachableHost(t *testing.T) {
	cfg := loadConfig(t, twoHosts)
	node1, node2 := enginefake.New("node1"), enginefake.New("node2")
	node2.SetUnreachable(true)
	snap := probe.Probe(t.Context(), cfg, probe.Options{Dial: fakes(node1, node2)})
	if !snap.Host("node1").Reachable {
		t.Errorf("node1 must still be probed")
	}
	h2 := snap.Host("node2")
	if h2.Reachable || !strings.Contains(h2.Error, "node2") {
		t.Errorf("node2 = reachable %v, error %q", h2.Reachable, h2.Error)
	}
	if u := snap.Unreachable(); len(u) != 1 || u[0].Name != "node2" {
		t.Errorf("unreachable = %v", u)
	}
}

func TestProbeFailureAfterConnect(t *testing.T) {
	cfg := loadConfig(t, twoHosts)
	node1, node2 := enginefake.New("node1"), enginefake.New("node2")
	node1.Fail(enginefake.MethodListContainers, engine.NewError("node1", "list containers", "", engine.ErrUnreachable, errors.New("connection reset")))
	snap := probe.Probe(t.Context(), cfg, probe.Options{Dial: fakes(node1, node2)})
	h1 := snap.Host("node1")
	if h1.Reachable || !strings.Contains(h1.Error, "connection reset") {
		t.Errorf("node1 = reachable %v, error %q", h1.Reachable, h1.Error)
	}
}

func TestEndpoint(t *testing.T) {
	h := &hclspec.Host{Name: "n", Address: "tcp://10.0.0.1:2376", TLS: &hclspec.TLSFiles{CAFile: "ca", CertFile: "c", KeyFile: "k"}}
	ep := probe.Endpoint(h, 0)
	if ep.HostName != "n" || ep.Address != h.Address || ep.TLS == nil || ep.TLS.CAFile != "ca" {
		t.Errorf("endpoint = %+v", ep)
	}
}

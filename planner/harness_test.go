package planner_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// testLineage is the lineage of every state the tests build.
const testLineage = "00000000-0000-4000-8000-000000000001"

func load(t testing.TB, src string) *hclspec.Config {
	t.Helper()
	cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(src)}, hclspec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

// snapshotOf builds a Snapshot in memory: every declared host reachable
// with 4 CPUs and 8GiB (or its capacity override), nothing running, all
// images present, reach address 10.0.0.N.
func snapshotOf(cfg *hclspec.Config) *probe.Snapshot {
	snap := &probe.Snapshot{FormatVersion: probe.FormatVersion, Project: cfg.Project}
	images := map[string]bool{}
	for _, inst := range cfg.Instances() {
		images[inst.Image] = true
	}
	for i, h := range cfg.Hosts {
		hf := &probe.HostFacts{Name: h.Name, Address: h.Address, Reachable: true, ReachAddress: fmt.Sprintf("10.0.0.%d", i+1),
			Labels: h.Labels, Total: probe.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30},
			Managed: []probe.ManagedContainer{}, Images: map[string]probe.ImageFacts{}, UsedPorts: []probe.UsedPort{}}
		if h.Capacity != nil {
			hf.Total = probe.Resources{MilliCPU: h.Capacity.MilliCPU, MemoryBytes: h.Capacity.MemoryBytes}
		}
		hf.Capacity = hf.Total.Sub(probe.Resources{MilliCPU: h.Reserve.MilliCPU, MemoryBytes: h.Reserve.MemoryBytes})
		for img := range images {
			hf.Images[img] = probe.ImageFacts{Present: true, ID: "sha256:" + img}
		}
		snap.Hosts = append(snap.Hosts, hf)
	}
	recount(snap)
	return snap
}

// recount recomputes every host's allocation and used ports from its
// managed containers (tests keep only managed containers).
func recount(snap *probe.Snapshot) {
	for _, hf := range snap.Hosts {
		hf.Allocated = probe.Resources{}
		hf.UsedPorts = []probe.UsedPort{}
		for _, m := range hf.Managed {
			if m.State != "running" {
				continue
			}
			hf.Allocated.MilliCPU += m.Resources.MilliCPU
			hf.Allocated.MemoryBytes += m.Resources.MemoryBytes
			for _, p := range m.Ports {
				hf.UsedPorts = append(hf.UsedPorts, probe.UsedPort{HostIP: p.HostIP, HostPort: p.HostPort, Protocol: p.Protocol, Container: m.Name})
			}
		}
		hf.Free = hf.Capacity.Sub(hf.Allocated)
		sort.Slice(hf.Managed, func(i, j int) bool { return hf.Managed[i].Name < hf.Managed[j].Name })
	}
}

// sim carries plans out in memory, as the applier will on real hosts:
// each step in order, resolving link values from the containers created
// before it. Dynamic host ports are handed out from 32768 up.
type sim struct {
	t        testing.TB
	cfg      *hclspec.Config
	snap     *probe.Snapshot
	st       *state.State
	nextPort int
	nextID   int
}

func newSim(t testing.TB, cfg *hclspec.Config) *sim {
	return &sim{t: t, cfg: cfg, snap: snapshotOf(cfg), st: state.New(cfg.Project, testLineage), nextPort: 32768}
}

func (s *sim) plan() *planner.Plan {
	s.t.Helper()
	p, err := planner.Make(s.cfg, s.snap, s.st, planner.Options{Refreshed: true})
	if err != nil {
		s.t.Fatalf("plan: %v", err)
	}
	return p
}

// apply carries out every step of p and bumps the state serial.
func (s *sim) apply(p *planner.Plan) {
	s.t.Helper()
	w := planner.NewWorld()
	for _, hf := range s.snap.Hosts {
		w.HostAddress[hf.Name] = hf.ReachAddress
	}
	for _, addr := range s.st.Addresses() {
		si := s.st.Instances[addr]
		w.Placed[addr] = si.Host
		w.Ports[addr] = portMap(si.Ports)
	}
	for _, step := range p.Steps {
		s.step(step, w)
	}
	s.st.Serial++
	recount(s.snap)
}

func (s *sim) step(step *planner.Step, w *planner.World) {
	switch step.Action {
	case planner.Pull:
		s.snap.Host(step.Host).Images[step.Image] = probe.ImageFacts{Present: true, ID: "sha256:" + step.Image}
	case planner.Delete:
		s.remove(step.FromHost, step.Name)
		if si := s.st.Instances[step.Address]; si != nil && si.Name == step.Name {
			delete(s.st.Instances, step.Address)
		}
	case planner.Create, planner.Replace, planner.Move:
		if step.Action != planner.Create {
			from := step.FromHost
			if from == "" {
				from = step.Host
			}
			s.remove(from, step.Name)
		}
		w.Placed[step.Address] = step.Host
		s.create(step, w)
	case planner.Start, planner.Update, planner.Adopt:
		m := s.find(step.Host, step.Name)
		m.State = "running"
		inst := s.instance(step.Address)
		m.Resources = probe.Resources{MilliCPU: inst.Resources.MilliCPU, MemoryBytes: inst.Resources.MemoryBytes}
		r, err := planner.Resolve(s.cfg, inst, w)
		if err != nil {
			s.t.Fatal(err)
		}
		s.record(step, m, r)
	}
}

func (s *sim) instance(addr string) *hclspec.Instance {
	for _, inst := range s.cfg.Instances() {
		if inst.Address == addr {
			return inst
		}
	}
	s.t.Fatalf("no instance %s", addr)
	return nil
}

func (s *sim) create(step *planner.Step, w *planner.World) {
	inst := s.instance(step.Address)
	r, err := planner.Resolve(s.cfg, inst, w)
	if err != nil || !r.Known {
		s.t.Fatalf("%s: resolve at apply: known=%v err=%v", step.ID, r != nil && r.Known, err)
	}
	s.nextID++
	m := probe.ManagedContainer{ID: fmt.Sprintf("id%04d", s.nextID), Name: inst.Name, Container: inst.Container, Index: inst.Index,
		ConfigHash: r.Hash, State: "running", Health: "healthy", Image: inst.Image,
		Resources: probe.Resources{MilliCPU: inst.Resources.MilliCPU, MemoryBytes: inst.Resources.MemoryBytes}}
	for _, p := range r.Spec.Ports {
		if p.HostPort == 0 {
			p.HostPort = s.nextPort
			s.nextPort++
		}
		m.Ports = append(m.Ports, p)
	}
	hf := s.snap.Host(step.Host)
	hf.Managed = append(hf.Managed, m)
	w.Ports[step.Address] = portMap(m.Ports)
	s.record(step, &hf.Managed[len(hf.Managed)-1], r)
}

func (s *sim) record(step *planner.Step, m *probe.ManagedContainer, r *planner.Resolved) {
	s.st.Instances[step.Address] = &state.Instance{Address: step.Address, Container: m.Container, Index: m.Index,
		Host: step.Host, HostAddress: s.snap.Host(step.Host).ReachAddress, ContainerID: m.ID, Name: m.Name, ConfigHash: m.ConfigHash, Spec: r.Spec, Ports: m.Ports,
		Sensitive: r.SensitivePaths()}
}

func (s *sim) find(host, name string) *probe.ManagedContainer {
	hf := s.snap.Host(host)
	for i := range hf.Managed {
		if hf.Managed[i].Name == name {
			return &hf.Managed[i]
		}
	}
	s.t.Fatalf("no container %s on %s", name, host)
	return nil
}

func (s *sim) remove(host, name string) {
	hf := s.snap.Host(host)
	if hf == nil {
		return
	}
	kept := hf.Managed[:0]
	for _, m := range hf.Managed {
		if m.Name != name {
			kept = append(kept, m)
		}
	}
	hf.Managed = kept
}

func portMap(ports []engine.PortBinding) map[string]int {
	out := map[string]int{}
	for _, p := range ports {
		key := fmt.Sprint(p.ContainerPort)
		if p.Protocol == "udp" {
			key += "/udp"
		}
		out[key] = p.HostPort
	}
	return out
}

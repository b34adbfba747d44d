package planner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
)

const lostConfig = `
project = "shop"
host "node1" { address = "unix:///n1.sock" }
host "node2" { address = "unix:///n2.sock" }
host "node3" { address = "unix:///n3.sock" }
container "api" {
  image = "shop/api:1"
  count = 3
  ports = ["8080"]
  resources {
    cpu    = 0.5
    memory = "256MiB"
  }
}
container "web" {
  image = "shop/web:1"
  count = 3
  link "api" {}
  placement {
    distinct_hosts = true
  }
}
`

// TestLostHostInstancesMove: with a host in Options.Lost, the instances
// the state records there move to hosts that answer (the old container
// is left: the host cannot be asked), containers linking to them are
// re-created with the new address, and once the host answers again the
// plan deletes the stale copies there. Without Lost nothing moves.
func TestLostHostInstancesMove(t *testing.T) {
	cfg := load(t, strings.Replace(lostConfig, "count = 3\n  link", "count = 2\n  link", 1))
	s := newSim(t, cfg)
	s.apply(s.plan())
	var onNode2, names []string
	for _, addr := range s.st.Addresses() {
		if si := s.st.Instances[addr]; si.Host == "node2" {
			onNode2 = append(onNode2, addr)
			names = append(names, si.Name)
		}
	}
	slices.Sort(names)
	if len(onNode2) == 0 {
		t.Fatalf("nothing placed on node2: %v", s.st.Addresses())
	}
	node2 := s.snap.Host("node2")
	before := slices.Clone(node2.Managed)
	node2.Reachable, node2.Managed, node2.Error = false, nil, "connection refused"

	p, err := planner.Make(cfg, s.snap, s.st, planner.Options{Refreshed: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes() {
		t.Fatalf("without Lost an unreachable host's instances must stay: %v", actions(p))
	}

	lost := planner.Options{Refreshed: true, Lost: map[string]bool{"node2": true}}
	p, err = planner.Make(cfg, s.snap, s.st, lost)
	if err != nil {
		t.Fatal(err)
	}
	moved := map[string]bool{}
	for _, st := range p.Steps {
		switch {
		case st.Action == planner.Move:
			if st.FromHost != "node2" || st.Host == "node2" || st.OldContainerID != "" || !strings.Contains(st.Reason, "unreachable too long") {
				t.Errorf("move %s: from %s to %s, old container %q, reason %q", st.Address, st.FromHost, st.Host, st.OldContainerID, st.Reason)
			}
			moved[st.Address] = true
		case st.Action == planner.Replace && strings.HasPrefix(st.Address, "web["):
			if !strings.Contains(st.Reason, "env.API_") {
				t.Errorf("%s replaced for %q, want the link env", st.Address, st.Reason)
			}
		case st.Action == planner.Pull:
		default:
			t.Errorf("unexpected step %s @%s (%s)", st.ID, st.Host, st.Reason)
		}
	}
	for _, addr := range onNode2 {
		if !moved[addr] {
			t.Errorf("%s was on node2 but is not moved: %v", addr, actions(p))
		}
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "node2 has been unreachable too long") }) {
		t.Errorf("warnings %q do not say node2 is lost", p.Warnings)
	}
	node2.Managed = nil // the simulated apply must not touch the lost host
	s.apply(p)
	if p2, err := planner.Make(cfg, s.snap, s.st, lost); err != nil || p2.Changes() {
		t.Fatalf("after the move, re-plan: %v %v", err, actions(p2))
	}

	// node2 answers again with its old containers: they are deleted as
	// duplicates, nothing else changes.
	node2.Reachable, node2.Managed, node2.Error = true, before, ""
	recount(s.snap)
	p, err = planner.Make(cfg, s.snap, s.st, planner.Options{Refreshed: true})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, st := range p.Steps {
		if st.Action != planner.Delete || st.FromHost != "node2" {
			t.Errorf("after node2 returned: unexpected step %s @%s", st.ID, st.Host)
			continue
		}
		deleted = append(deleted, st.Name)
	}
	slices.Sort(deleted)
	if !slices.Equal(deleted, names) {
		t.Errorf("deleted on node2 %v, want the stale copies %v", deleted, names)
	}
}

// TestDeleteOfUndeclaredInstanceAndItsDuplicate: an instance no longer
// declared whose host also has a duplicate of it (a create-before-destroy
// leftover under the temporary name) gets two delete steps with distinct
// IDs, and the plan is made (it used to fail ordering them).
func TestDeleteOfUndeclaredInstanceAndItsDuplicate(t *testing.T) {
	cfg := load(t, lostConfig)
	s := newSim(t, cfg)
	s.apply(s.plan())
	si := s.st.Instances["api[2]"]
	hf := s.snap.Host(si.Host)
	hf.Managed = append(hf.Managed, probe.ManagedContainer{ID: "dup", Name: si.Name + "-dockplan-next", Container: "api", Index: 2,
		State: "running", Image: "shop/api:1"})
	recount(s.snap)
	fewer := load(t, strings.Replace(lostConfig, "count = 3\n  ports", "count = 2\n  ports", 1))
	p, err := planner.Make(fewer, s.snap, s.st, planner.Options{Refreshed: true})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	ids := map[string]bool{}
	var deletes []string
	for _, st := range p.Steps {
		if ids[st.ID] {
			t.Errorf("two steps share the ID %q", st.ID)
		}
		ids[st.ID] = true
		if st.Action == planner.Delete {
			deletes = append(deletes, st.ID)
		}
	}
	slices.Sort(deletes)
	want := []string{"delete api[2] " + si.Host, "delete " + si.Name + "-dockplan-next " + si.Host}
	slices.Sort(want)
	if !slices.Equal(deletes, want) {
		t.Errorf("deletes %q, want %q", deletes, want)
	}
}

package planner

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// addPulls adds a pull step for every image a host lacks and a new
// container there needs, and makes those creates depend on it. Offline
// plans cannot see images and add none.
func (p *planning) addPulls() {
	if !p.opts.Refreshed {
		return
	}
	pulls := map[string]*Step{}
	for _, s := range p.plan.Steps {
		if s.Action != Create && s.Action != Replace && s.Action != Move {
			continue
		}
		hf := p.hostFacts[s.Host]
		if hf == nil || hf.Images[s.Image].Present {
			continue
		}
		id := "pull " + s.Host + " " + s.Image
		pull := pulls[id]
		if pull == nil {
			ct := p.containers[s.Container]
			pull = &Step{ID: id, Action: Pull, Host: s.Host, Image: s.Image, ImageSource: ct.ImageSource,
				Reason: fmt.Sprintf("%s lacks the image", s.Host), DependsOn: []string{}, Index: -1}
			if ct.ImageSource == "local" {
				pull.Reason += "; copied from the engine of the machine running dockplan"
			}
			pulls[id] = pull
		}
		s.DependsOn = append(s.DependsOn, id)
	}
	for _, id := range sortedKeys(pulls) {
		p.plan.Steps = append(p.plan.Steps, pulls[id])
	}
}

// orderSteps adds the dependency edges and sorts the steps topologically.
// A container's steps come after those of the containers it depends on
// (after they are healthy when they declare a health check); deletes go in
// reverse dependency order, highest index first.
func (p *planning) orderSteps() error {
	byContainer := map[string][]*Step{}
	for _, s := range p.plan.Steps {
		if s.Container != "" {
			byContainer[s.Container] = append(byContainer[s.Container], s)
		}
	}
	for _, s := range p.plan.Steps {
		// A duplicate claiming the same instance (such as the temporary
		// container of a replace a killed apply left) goes first, so its
		// name is free again.
		if s.Action != Delete {
			s.DependsOn = append(s.DependsOn, p.dupDeletes[s.Address]...)
		}
		switch s.Action {
		case Create, Replace, Move, Start, Update:
			p.dependOnTargets(s, byContainer)
		case Delete:
			p.deleteAfterDependents(s, byContainer)
		}
	}
	for _, s := range p.plan.Steps {
		s.DependsOn = uniqueSorted(s.DependsOn)
		s.WaitHealthy = uniqueSorted(s.WaitHealthy)
	}
	return p.topoSort()
}

func (p *planning) dependOnTargets(s *Step, byContainer map[string][]*Step) {
	ct := p.containers[s.Container]
	if ct == nil {
		return
	}
	for _, dep := range ct.Deps {
		dc := p.containers[dep]
		for _, t := range byContainer[dep] {
			if t.Action != Delete {
				s.DependsOn = append(s.DependsOn, t.ID)
			}
		}
		makesContainer := s.Action == Create || s.Action == Replace || s.Action == Move
		if makesContainer && dc != nil && len(dc.Instances) > 0 && dc.Instances[0].Health != nil {
			for _, ti := range dc.Instances {
				s.WaitHealthy = append(s.WaitHealthy, ti.Address)
			}
		}
	}
}

// deleteAfterDependents orders a delete after the steps of the containers
// that depend on the deleted one, and after deletes of higher indexes of
// its own container.
func (p *planning) deleteAfterDependents(s *Step, byContainer map[string][]*Step) {
	if p.isDuplicateDelete(s.ID) {
		return // a spare copy nothing uses; the instance itself stays
	}
	for _, ct := range p.cfg.Containers {
		if !contains(ct.Deps, s.Container) {
			continue
		}
		for _, t := range byContainer[ct.Name] {
			if t.Action == Delete || t.Action == Replace || t.Action == Move {
				s.DependsOn = append(s.DependsOn, t.ID)
			}
		}
	}
	if p.opts.Destroy {
		return // everything goes: no index order, so hosts delete in parallel
	}
	for _, t := range byContainer[s.Container] {
		if t.Action == Delete && t.Index > s.Index && t.ID != s.ID {
			s.DependsOn = append(s.DependsOn, t.ID)
		}
	}
}

// topoSort orders steps so each follows its dependencies; among the steps
// ready at once: pulls first, then deletes, then the rest, each by ID.
//
// Step IDs are unique, so that preference is a total order: the steps are
// sorted by it once, and the ready set is a heap of positions in that
// order, which picks the same step as a heap of the steps themselves, with
// integer compares.
func (p *planning) topoSort() error {
	steps := slices.Clone(p.plan.Steps)
	sortSteps(steps)
	for i := 1; i < len(steps); i++ {
		if steps[i].ID == steps[i-1].ID {
			// The applier tracks steps by ID: two with one ID would be
			// one node of the graph and a wrong apply.
			return fmt.Errorf("internal error: two steps of the plan have the ID %q; this is a dockplan bug, please report it with the configuration and the state", steps[i].ID)
		}
	}
	pos, err := positions(p.plan.Steps, steps)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		p.plan.Steps = steps // nothing waits for anything
		return nil
	}
	indeg := make([]int32, len(steps))
	next := map[int32][]int32{}
	for i, s := range steps {
		for _, dep := range s.DependsOn {
			j := pos[dep]
			indeg[i]++
			next[j] = append(next[j], int32(i))
		}
	}
	ready := &posHeap{}
	for i := range steps {
		if indeg[i] == 0 {
			ready.items = append(ready.items, int32(i))
		}
	}
	// ready.items is in increasing order, which is already a heap.
	out := make([]*Step, 0, len(steps))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int32)
		out = append(out, steps[i])
		for _, n := range next[i] {
			indeg[n]--
			if indeg[n] == 0 {
				heap.Push(ready, n)
			}
		}
	}
	if len(out) != len(steps) {
		var stuck []string
		for i, s := range steps {
			if indeg[i] > 0 {
				stuck = append(stuck, s.ID)
			}
		}
		sort.Strings(stuck)
		return fmt.Errorf("the plan's steps depend on each other in a cycle: %s", strings.Join(stuck, ", "))
	}
	p.plan.Steps = out
	return nil
}

// positions maps each step's ID to its position in sorted, and checks
// that every dependency is a step (in plan order, so that the error names
// the first step with an unknown one). It is empty when no step depends
// on another.
func positions(steps, sorted []*Step) (map[string]int32, error) {
	var pos map[string]int32
	for _, s := range steps {
		if len(s.DependsOn) == 0 {
			continue
		}
		if pos == nil {
			pos = make(map[string]int32, len(sorted))
			for j, t := range sorted {
				pos[t.ID] = int32(j)
			}
		}
		for _, dep := range s.DependsOn {
			if _, ok := pos[dep]; !ok {
				return nil, fmt.Errorf("step %q depends on unknown step %q", s.ID, dep)
			}
		}
	}
	return pos, nil
}

// posHeap holds the positions of the steps ready to run, lowest first.
type posHeap struct{ items []int32 }

func (h *posHeap) Len() int           { return len(h.items) }
func (h *posHeap) Less(i, j int) bool { return h.items[i] < h.items[j] }
func (h *posHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *posHeap) Push(x any)         { h.items = append(h.items, x.(int32)) }
func (h *posHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

// stepCompare orders steps as topoSort prefers them among those ready:
// pulls, then deletes, then the rest, each by ID.
func stepCompare(a, b *Step) int {
	if c := cmp.Compare(actionRank(a.Action), actionRank(b.Action)); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

func actionRank(a Action) int {
	switch a {
	case Pull:
		return 0
	case Delete:
		return 1
	default:
		return 2
	}
}

func uniqueSorted(in []string) []string {
	if len(in) == 0 {
		return in
	}
	sort.Strings(in)
	out := in[:1]
	for _, s := range in[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}

func sortChanges(ch []AttrChange) {
	sort.SliceStable(ch, func(i, j int) bool { return ch[i].Path < ch[j].Path })
}

func (p *planning) isDuplicateDelete(id string) bool {
	for _, ids := range p.dupDeletes {
		if contains(ids, id) {
			return true
		}
	}
	return false
}

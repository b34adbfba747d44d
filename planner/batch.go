package planner

import (
	"container/heap"
	"slices"
)

// batchLen returns how many decisions at the head of todo are instances of
// one container with the same request and no fixed host port: placing
// them changes only the host each one lands on, so one heap of feasible
// hosts serves them all.
func batchLen(todo []*decision) int {
	first := todo[0]
	if hasFixedPort(first.inst) {
		return 1
	}
	n := 1
	for n < len(todo) && todo[n].ct == first.ct && requestOf(todo[n].inst) == requestOf(first.inst) && !hasFixedPort(todo[n].inst) {
		n++
	}
	return n
}

// placeBatch places a batch (see batchLen) with the same result as running
// choose for each instance in turn, in O(hosts + instances × log hosts):
// the feasible hosts are scored once into a heap; after each placement
// only the chosen host's score changes, so only it is re-scored and pushed
// back when it still fits. The hosts that do not fit are the others
// (refused): a note lists them without running the filters on every host.
func (p *planning) placeBatch(batch []*decision) []PlaceFailure {
	first := batch[0]
	if len(batch) == 1 {
		return p.placeOne(first)
	}
	sp := p.spreadOf(first.ct)
	// The heap's array is reused from batch to batch: it holds at most
	// every host.
	h := &hostHeap{items: p.heapItems[:0]}
	defer func() { p.heapItems = h.items[:0] }()
	var refused []*hostState
	for _, hs := range p.hostOrder {
		if n := sp.on[hs]; feasible(hs, first.inst, first.ct, n) {
			h.items = append(h.items, scored{hs: hs, score: score(hs, first.inst, first.ct.Placement.Strategy, n)})
		} else {
			refused = append(refused, hs)
		}
	}
	heap.Init(h)
	var failures []PlaceFailure
	for _, d := range batch {
		if h.Len() == 0 {
			failures = append(failures, PlaceFailure{Address: d.inst.Address, Rejected: rejections(p.hostOrder, d.inst, d.ct, sp)})
			continue
		}
		// The best host is on top; the runner-up, the best of the others,
		// is one of its children. The top stays in the heap while it is
		// re-scored, then sinks to its place (or leaves when full): one
		// pass down the heap instead of a pop and a push.
		best := h.items[0]
		note := p.notes.new()
		*note = PlacementNote{Strategy: d.ct.Placement.Strategy.String(), Score: best.score,
			RejectedCount: len(refused)}
		if ru, ok := h.runnerUp(); ok {
			note.RunnerUp, note.RunnerUpScore = ru.hs.name, ru.score
		}
		if note.RejectedCount > 0 && note.RejectedCount <= maxNotedRejections {
			slices.SortFunc(refused, func(a, b *hostState) int { return a.order - b.order })
			note.Rejected = rejections(refused, d.inst, d.ct, sp)
		}
		d.host, d.note = best.hs.name, note
		best.hs.take(d.inst, d.ct, sp)
		if n := sp.on[best.hs]; feasible(best.hs, d.inst, d.ct, n) {
			h.items[0].score = score(best.hs, d.inst, d.ct.Placement.Strategy, n)
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
			refused = append(refused, best.hs)
		}
	}
	return failures
}

func (p *planning) placeOne(d *decision) []PlaceFailure {
	sp := p.spreadOf(d.ct)
	hs, note, rejected := choose(p.hostOrder, d.inst, d.ct, sp)
	if hs == nil {
		return []PlaceFailure{{Address: d.inst.Address, Rejected: rejected}}
	}
	d.host, d.note = hs.name, note
	hs.take(d.inst, d.ct, sp)
	return nil
}

// scored is a feasible host and its score for the batch's container.
type scored struct {
	hs    *hostState
	score float64
}

// hostHeap keeps the best host on top: highest score, then name.
type hostHeap struct{ items []scored }

func (h *hostHeap) Len() int { return len(h.items) }

// runnerUp is the best host after the top: the better of its children.
func (h *hostHeap) runnerUp() (scored, bool) {
	switch {
	case len(h.items) < 2:
		return scored{}, false
	case len(h.items) == 2 || h.Less(1, 2):
		return h.items[1], true
	default:
		return h.items[2], true
	}
}
func (h *hostHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.score != b.score {
		return a.score > b.score
	}
	return a.hs.name < b.hs.name
}
func (h *hostHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *hostHeap) Push(x any)    { h.items = append(h.items, x.(scored)) }
func (h *hostHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

package planner

import (
	"container/heap"
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
// back when it still fits.
func (p *planning) placeBatch(batch []*decision) []PlaceFailure {
	first := batch[0]
	if len(batch) == 1 {
		return p.placeOne(first)
	}
	h := &hostHeap{}
	for _, hs := range p.hostOrder {
		if feasible(hs, first.inst, first.ct) {
			h.items = append(h.items, scored{hs: hs, score: score(hs, first.inst, first.ct.Placement.Strategy)})
		}
	}
	heap.Init(h)
	var failures []PlaceFailure
	for _, d := range batch {
		if h.Len() == 0 {
			failures = append(failures, PlaceFailure{Address: d.inst.Address, Rejected: rejections(p.hostOrder, d.inst, d.ct)})
			continue
		}
		best := heap.Pop(h).(scored)
		note := &PlacementNote{Strategy: d.ct.Placement.Strategy.String(), Score: best.score,
			RejectedCount: len(p.hostOrder) - h.Len() - 1}
		if h.Len() > 0 {
			note.RunnerUp, note.RunnerUpScore = h.items[0].hs.name, h.items[0].score
		}
		if note.RejectedCount > 0 && note.RejectedCount <= maxNotedRejections {
			note.Rejected = rejections(p.hostOrder, d.inst, d.ct)
		}
		d.host, d.note = best.hs.name, note
		best.hs.take(d.inst, requestOf(d.inst))
		if feasible(best.hs, d.inst, d.ct) {
			heap.Push(h, scored{hs: best.hs, score: score(best.hs, d.inst, d.ct.Placement.Strategy)})
		}
	}
	return failures
}

func (p *planning) placeOne(d *decision) []PlaceFailure {
	hs, note, rejected := choose(p.hostOrder, d.inst, d.ct)
	if hs == nil {
		return []PlaceFailure{{Address: d.inst.Address, Rejected: rejected}}
	}
	d.host, d.note = hs.name, note
	hs.take(d.inst, requestOf(d.inst))
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

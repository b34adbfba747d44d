package planner

import (
	"cmp"
	"slices"
	"strings"
)

// strKey is the 8 bytes of s from off, big-endian, padded with zeros.
// Comparing the keys at 0, 8, 16, … in turn compares s as strings do, up
// to trailing zero bytes: when all keys are equal, compare the strings.
// A sort by key does in integer compares what most string compares of
// addresses and IDs, which share long prefixes, would do byte by byte.
func strKey(s string, off int) uint64 {
	var k uint64
	for i := off; i < off+8; i++ {
		k <<= 8
		if i < len(s) {
			k |= uint64(s[i])
		}
	}
	return k
}

// sortByRequest sorts decisions as placeAll places them: largest memory
// request first, then largest CPU request, then by address. Addresses are
// unique, so the order is total and the sort needs not be stable.
func sortByRequest(todo []*decision) {
	type keyed struct {
		mem, cpu int64
		addr     uint64
		d        *decision
	}
	keys := make([]keyed, len(todo))
	for i, d := range todo {
		req := requestOf(d.inst)
		keys[i] = keyed{mem: req.MemoryBytes, cpu: req.MilliCPU, addr: strKey(d.inst.Address, 0), d: d}
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		if c := cmp.Compare(b.mem, a.mem); c != 0 {
			return c
		}
		if c := cmp.Compare(b.cpu, a.cpu); c != 0 {
			return c
		}
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		return strings.Compare(a.d.inst.Address, b.d.inst.Address)
	})
	for i, k := range keys {
		todo[i] = k.d
	}
}

// sortSteps sorts steps by stepCompare.
func sortSteps(steps []*Step) {
	type keyed struct {
		rank   int
		k0, k1 uint64
		s      *Step
	}
	keys := make([]keyed, len(steps))
	for i, s := range steps {
		keys[i] = keyed{rank: actionRank(s.Action), k0: strKey(s.ID, 0), k1: strKey(s.ID, 8), s: s}
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.k0, b.k0); c != 0 {
			return c
		}
		if c := cmp.Compare(a.k1, b.k1); c != 0 {
			return c
		}
		return strings.Compare(a.s.ID, b.s.ID)
	})
	for i, k := range keys {
		steps[i] = k.s
	}
}

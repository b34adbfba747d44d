package planner

import "unsafe"

// slabBytes is the size of a slab's chunks: a small object for the Go
// allocator (at most 32 KiB). Larger chunks are allocated as large
// objects, page by page, and at a million steps the runtime then spent
// seconds returning pages to the OS to make room for them.
const slabBytes = 16 << 10

// slab hands out zeroed values from chunks of about slabBytes: a plan of a
// million steps makes twenty thousand allocations instead of a million,
// and each value takes its size, not the next size class. A value keeps
// its chunk alive, which costs nothing here: the planner keeps the values
// it takes for as long as it keeps their neighbours.
type slab[T any] struct {
	free []T
}

func (s *slab[T]) new() *T {
	if len(s.free) == 0 {
		var zero T
		s.free = make([]T, max(1, slabBytes/int(unsafe.Sizeof(zero))))
	}
	v := &s.free[0]
	s.free = s.free[1:]
	return v
}

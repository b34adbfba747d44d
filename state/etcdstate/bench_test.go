package etcdstate

import (
	"fmt"
	"testing"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	"github.com/dockplan/dockplan/state/statetest"
)

// BenchmarkEtcdState measures the backend against a 3-member cluster on
// loopback (each write is fsynced by every member): taking and releasing
// the lock, saving a state with and without the lock held, and loading
// it. The figures are in docs/benchmarks.md.
func BenchmarkEtcdState(b *testing.B) {
	c := etcdtest.Start(b)
	b.Run("lock-unlock", func(b *testing.B) {
		be := newBackend(b, c, Options{})
		for b.Loop() {
			id, err := be.Lock(b.Context(), state.NewLockInfo("apply"))
			if err != nil {
				b.Fatal(err)
			}
			if err := be.Unlock(b.Context(), id); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{100, 1000} {
		for _, locked := range []bool{true, false} {
			name := map[bool]string{true: "locked", false: "unlocked"}[locked]
			b.Run(fmt.Sprintf("save/%s/instances=%d", name, n), func(b *testing.B) {
				benchmarkSave(b, c, n, locked)
			})
		}
	}
	b.Run("load/instances=100", func(b *testing.B) {
		be := newBackend(b, c, Options{})
		if err := be.Save(b.Context(), statetest.Sample(1, 100)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := be.Load(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchmarkSave(b *testing.B, c *etcdtest.Cluster, n int, locked bool) {
	be := newBackend(b, c, Options{})
	s := statetest.Sample(1, n)
	if err := be.Save(b.Context(), s); err != nil {
		b.Fatal(err)
	}
	if locked {
		id, err := be.Lock(b.Context(), state.NewLockInfo("apply"))
		if err != nil {
			b.Fatal(err)
		}
		defer be.Unlock(b.Context(), id)
	}
	data, _ := s.Encode()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s.Serial++
		if err := be.Save(b.Context(), s); err != nil {
			b.Fatal(err)
		}
	}
}

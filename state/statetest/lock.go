package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dockplan/dockplan/state"
)

func testLockExclusive(t *testing.T, b state.Backend) {
	holder := state.NewLockInfo("apply")
	id, err := lockWithin(t, b, holder, longWait)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if id != holder.ID {
		t.Errorf("Lock returned ID %q; want the info's %q", id, holder.ID)
	}
	_, err = lockWithin(t, b, state.NewLockInfo("destroy"), shortWait)
	wantLocked(t, err, holder)
	// Saving is still possible for the holder.
	mustSave(t, b, Sample(1, 1))
	if err := b.Unlock(t.Context(), id); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Lock(done, state.NewLockInfo("apply")); err == nil {
		t.Error("Lock with a done context succeeded")
	}
}

func testUnlock(t *testing.T, b state.Backend) {
	info := state.NewLockInfo("apply")
	info.ID = ""
	id, err := lockWithin(t, b, info, longWait)
	if err != nil || id == "" {
		t.Fatalf("Lock with an empty ID = %q, %v; want a generated ID", id, err)
	}
	if err := b.Unlock(t.Context(), "not-"+id); !errors.Is(err, state.ErrNotLocked) {
		t.Errorf("Unlock with a wrong ID = %v; want ErrNotLocked", err)
	}
	if _, err := lockWithin(t, b, state.NewLockInfo("apply"), shortWait); err == nil {
		t.Fatal("a wrong-ID Unlock released the lock")
	}
	if err := b.Unlock(t.Context(), id); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := b.Unlock(t.Context(), id); !errors.Is(err, state.ErrNotLocked) {
		t.Errorf("second Unlock = %v; want ErrNotLocked", err)
	}
	again, err := lockWithin(t, b, state.NewLockInfo("apply"), shortWait)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if err := b.Unlock(t.Context(), again); err != nil {
		t.Fatal(err)
	}
}

func testForceUnlock(t *testing.T, b state.Backend) {
	if err := b.ForceUnlock(t.Context(), "nothing"); !errors.Is(err, state.ErrNotLocked) {
		t.Errorf("ForceUnlock of nothing = %v; want ErrNotLocked", err)
	}
	holder := state.NewLockInfo("apply")
	id, err := lockWithin(t, b, holder, longWait)
	if err != nil {
		t.Fatal(err)
	}
	err = b.ForceUnlock(t.Context(), "wrong-id")
	if !errors.Is(err, state.ErrWrongLockID) {
		t.Fatalf("ForceUnlock with a wrong ID = %v; want ErrWrongLockID", err)
	}
	if !containsAll(err.Error(), id, "apply") {
		t.Errorf("wrong-ID message %q does not name the holder", err)
	}
	_, err = lockWithin(t, b, state.NewLockInfo("apply"), shortWait)
	wantLocked(t, err, holder)
	if err := b.ForceUnlock(t.Context(), id); err != nil {
		t.Fatalf("ForceUnlock with the holder's ID: %v", err)
	}
	next, err := lockWithin(t, b, state.NewLockInfo("apply"), shortWait)
	if err != nil {
		t.Fatalf("Lock after ForceUnlock: %v", err)
	}
	// The old holder's Unlock must fail and leave the new lock alone.
	if err := b.Unlock(t.Context(), id); err == nil {
		t.Error("Unlock of a force-unlocked lock succeeded")
	}
	if _, err := lockWithin(t, b, state.NewLockInfo("apply"), shortWait); err == nil {
		t.Error("the old holder's Unlock released the new lock")
	}
	if err := b.Unlock(t.Context(), next); err != nil {
		t.Fatal(err)
	}
}

func containsAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// Writers and rounds of the concurrency tests.
const (
	writers = 8
	rounds  = 6
)

// testConcurrentLocked: writers each lock, load, add one instance, save
// and unlock, several times. No serial and no instance may be lost.
func testConcurrentLocked(t *testing.T, b state.Backend) {
	mustSave(t, b, Sample(1, 0))
	errs := make(chan error, writers*rounds)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				errs <- lockedAdd(t.Context(), b, fmt.Sprintf("w%d[%d]", w, r))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkAll(t, b, 1+writers*rounds)
}

func lockedAdd(ctx context.Context, b state.Backend, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, longWait)
	defer cancel()
	id, err := b.Lock(ctx, state.NewLockInfo("apply"))
	if err != nil {
		return err
	}
	s, err := b.Load(ctx)
	if err == nil {
		add(s, addr)
		err = b.Save(ctx, s)
	}
	return errors.Join(err, b.Unlock(ctx, id))
}

// testConcurrentUnlocked: writers save without taking the lock and retry
// on a serial conflict. The compare and swap alone must lose nothing.
func testConcurrentUnlocked(t *testing.T, b state.Backend) {
	mustSave(t, b, Sample(1, 0))
	errs := make(chan error, writers*rounds)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				errs <- retryAdd(t.Context(), b, fmt.Sprintf("w%d[%d]", w, r))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkAll(t, b, 1+writers*rounds)
}

func retryAdd(ctx context.Context, b state.Backend, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, longWait)
	defer cancel()
	for {
		s, err := b.Load(ctx)
		if err != nil {
			return err
		}
		add(s, addr)
		err = b.Save(ctx, s)
		var conflict *state.SerialConflictError
		if !errors.As(err, &conflict) {
			return err
		}
	}
}

func add(s *state.State, addr string) {
	s.Serial++
	s.Instances[addr] = &state.Instance{Address: addr, Container: "w", Host: "node1", Name: "shop-" + addr}
}

// checkAll fails unless the stored serial is serial and every writer's
// every instance is there.
func checkAll(t *testing.T, b state.Backend, serial int64) {
	t.Helper()
	s := mustLoad(t, b)
	if s.Serial != serial {
		t.Errorf("serial = %d; want %d (a save was lost or doubled)", s.Serial, serial)
	}
	for w := range writers {
		for r := range rounds {
			if addr := fmt.Sprintf("w%d[%d]", w, r); s.Instances[addr] == nil {
				t.Errorf("instance %s was lost", addr)
			}
		}
	}
}

func testLarge(t *testing.T, b state.Backend) {
	big := Sample(1, 5000)
	want := encode(t, big)
	mustSave(t, b, big)
	got := mustLoad(t, b)
	if !bytes.Equal(encode(t, got), want) {
		t.Fatalf("a 5000-instance state did not round-trip")
	}
	got.Serial++
	delete(got.Instances, "web[4999]")
	mustSave(t, b, got)
	if again := mustLoad(t, b); again.Serial != 2 || len(again.Instances) != 4999 {
		t.Fatalf("after the second save: serial %d, %d instances; want 2 and 4999", again.Serial, len(again.Instances))
	}
}

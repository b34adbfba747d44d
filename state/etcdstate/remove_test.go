package etcdstate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	"github.com/dockplan/dockplan/state/statetest"
)

// TestDamagedStateAdvice: a stored state that passes the manifest's
// checksum but does not decode (written outside dockplan) is reported as
// damaged with etcd's advice, never the file backend's "restore it from
// ….backup" (etcd keeps no backup).
func TestDamagedStateAdvice(t *testing.T) {
	c := etcdtest.Start(t)
	for _, tt := range []struct{ name, data string }{
		{name: "empty", data: " "},
		{name: "not JSON", data: `{"format_version": 1, "lineage": `},
		{name: "unknown field", data: `{"format_version": 1, "lineage": "` + statetest.Lineage + `", "serial": 2, "extra": true}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := rawBackend{newBackend(t, c, Options{})}
			b.PutRaw(t, []byte(tt.data))
			_, err := b.Load(t.Context())
			var perr *state.ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("Load = %v; want a *state.ParseError", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "backup") || !strings.Contains(msg, "changed outside dockplan") || !strings.Contains(msg, "etcdctl get --prefix") {
				t.Errorf("Load error %q: want etcd's advice and no .backup", msg)
			}
			// A save checks only the header: it may go over a damaged
			// body, but when it refuses, it says so without .backup.
			if err := b.Save(t.Context(), statetest.Sample(3, 1)); err != nil && strings.Contains(err.Error(), "backup") {
				t.Errorf("Save over it = %v; want no .backup advice", err)
			}
		})
	}
}

// TestRemove: Remove deletes an older copy only under this value's lock
// and only while its header is the one given; a Save then keeps its own
// serial over nothing.
func TestRemove(t *testing.T) {
	c := etcdtest.Start(t)
	b := newBackend(t, c, Options{})
	older := statetest.Sample(3, 2)
	if err := b.Save(t.Context(), older); err != nil {
		t.Fatal(err)
	}
	hdr := state.Header{FormatVersion: older.FormatVersion, Lineage: older.Lineage, Serial: 3}
	if err := b.Remove(t.Context(), hdr); err == nil || !strings.Contains(err.Error(), "without holding its lock") {
		t.Fatalf("Remove without the lock = %v; want a refusal", err)
	}
	id, err := b.Lock(t.Context(), state.NewLockInfo("state migrate"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(t.Context(), state.Header{FormatVersion: 1, Lineage: older.Lineage, Serial: 2}); err == nil {
		t.Fatal("Remove of another serial succeeded")
	}
	if st, err := b.Load(t.Context()); err != nil || st == nil || st.Serial != 3 {
		t.Fatalf("after a refused Remove: %v %v; want serial 3 still stored", st, err)
	}
	if err := b.Remove(t.Context(), hdr); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if st, err := b.Load(t.Context()); err != nil || st != nil {
		t.Fatalf("after Remove: %v %v; want nothing stored", st, err)
	}
	if keys := keysUnder(t, b, b.prefix+"/"); len(keys) != 1 || keys[0] != b.lockKey() {
		t.Errorf("keys after Remove: %v; want only the lock", keys)
	}
	newer := statetest.Sample(9, 3)
	if err := b.Save(t.Context(), newer); err != nil {
		t.Fatalf("Save of serial 9 after Remove: %v", err)
	}
	if err := b.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Load(t.Context()); err != nil || st == nil || st.Serial != 9 || len(st.Instances) != 3 {
		t.Fatalf("Load = %v %v; want serial 9 with 3 instances", st, err)
	}
}

// TestLockWithoutWaiting: a caller that will not wait for another holder
// (apply's default -lock-timeout 0 gives Lock 100ms) still gets the time
// to reach etcd on a fresh connection, and, when someone holds the lock,
// fails at once naming the holder.
func TestLockWithoutWaiting(t *testing.T) {
	c := etcdtest.Start(t)
	prefix := freshPrefix()
	for i, want := range []string{"", "apply"} {
		b := newBackend(t, c, Options{Prefix: prefix})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		start := time.Now()
		_, err := b.Lock(ctx, state.NewLockInfo("apply"))
		cancel()
		var locked *state.LockedError
		switch {
		case i == 0 && err != nil:
			t.Fatalf("Lock on a fresh connection with 10ms to wait: %v; want the lock (nobody holds it)", err)
		case i == 1 && (!errors.As(err, &locked) || locked.Holder.Operation != want):
			t.Fatalf("Lock while held = %v; want *LockedError naming the holder", err)
		case i == 1 && time.Since(start) > 3*time.Second:
			t.Errorf("Lock while held took %s; it must not wait for the holder", time.Since(start))
		}
	}
}

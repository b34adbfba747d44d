//go:build linux || darwin

package etcdstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	"github.com/dockplan/dockplan/state/statetest"
)

// leaderIndex returns the index of the cluster's current leader.
func leaderIndex(t *testing.T, b *Backend, c *etcdtest.Cluster) int {
	t.Helper()
	for i, ep := range c.Endpoints() {
		if c.PID(i) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		resp, err := b.client.Status(ctx, ep)
		cancel()
		if err == nil && resp.Leader == resp.Header.MemberId {
			return i
		}
	}
	t.Fatal("no member says it is the leader")
	return -1
}

// addTo returns the next state after s with one more instance.
func addTo(s *state.State) *state.State {
	next := *s
	next.Instances = map[string]*state.Instance{}
	for k, v := range s.Instances {
		next.Instances[k] = v
	}
	next.Serial++
	addr := fmt.Sprintf("w[%d]", next.Serial)
	next.Instances[addr] = &state.Instance{Address: addr, Container: "w", Index: int(next.Serial), Host: "node1", Name: "shop-" + addr}
	return &next
}

// wantAll fails unless s has serial and every instance addTo made up to
// it.
func wantAll(t *testing.T, s *state.State, serial int64) {
	t.Helper()
	if s == nil || s.Serial != serial {
		t.Fatalf("stored state %v; want serial %d", s, serial)
	}
	for i := int64(2); i <= serial; i++ {
		if addr := fmt.Sprintf("w[%d]", i); s.Instances[addr] == nil {
			t.Errorf("instance %s (saved at serial %d) was lost", addr, i)
		}
	}
}

// With the leader killed in the middle, saves under a held lock go on and
// the lock stays held; nothing is lost.
func TestSavesGoOnWithOneMemberKilled(t *testing.T) {
	c := etcdtest.Start(t)
	b := newBackend(t, c, Options{})
	other := newBackend(t, c, Options{Prefix: b.prefix})
	id, err := b.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	s := statetest.Sample(1, 0)
	if err := b.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	const saves, killAt = 30, 10
	killed := -1
	var slowest time.Duration
	for range saves {
		if s.Serial == killAt {
			killed = leaderIndex(t, b, c)
			c.Kill(killed)
			t.Logf("killed the leader, member %d", killed)
		}
		s = addTo(s)
		start := time.Now()
		if err := b.Save(t.Context(), s); err != nil {
			t.Fatalf("save serial %d with member %d killed: %v", s.Serial, killed, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest save: %s", slowest)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	_, err = other.Lock(ctx, state.NewLockInfo("apply"))
	cancel()
	var locked *state.LockedError
	if !errors.As(err, &locked) || locked.Holder.ID != id {
		t.Fatalf("lock by another while the first holds it = %v; want *LockedError naming %s", err, id)
	}
	if err := b.Unlock(t.Context(), id); err != nil {
		t.Fatalf("unlock after the kill: %v", err)
	}
	c.Restart(killed)
	waitHealthy(t, c)
	got, err := other.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, got, s.Serial)
}

func waitHealthy(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

// With two of three members killed a save fails with the quorum message
// (not a bare context deadline); after they restart the next save works
// and no acknowledged save is lost.
func TestQuorumLost(t *testing.T) {
	c := etcdtest.Start(t)
	b := newBackend(t, c, Options{Timeout: 2 * time.Second})
	s := statetest.Sample(1, 0)
	for range 3 {
		if err := b.Save(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		s = addTo(s)
	}
	acknowledged := s.Serial - 1
	c.Kill(1)
	c.Kill(2)
	start := time.Now()
	err := b.Save(t.Context(), s)
	unavailable := wantUnavailable(t, err, c.Endpoints()[0])
	t.Logf("save failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	_, err = b.Load(t.Context())
	wantUnavailable(t, err, c.Endpoints()[0])
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	_, err = b.Lock(ctx, state.NewLockInfo("apply"))
	cancel()
	wantUnavailable(t, err, c.Endpoints()[0])
	// A lock timeout shorter than the backend's: the same message.
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = b.Lock(ctx, state.NewLockInfo("apply"))
	cancel()
	wantUnavailable(t, err, c.Endpoints()[0])
	t.Logf("lock with a 300 ms timeout: %v", err)

	c.Restart(1)
	c.Restart(2)
	waitHealthy(t, c)
	got, err := b.Load(t.Context())
	if err != nil {
		t.Fatalf("load after the restart: %v", err)
	}
	if got.Serial != acknowledged && !(unavailable.MaybeWritten && got.Serial == s.Serial) {
		t.Fatalf("serial after the restart = %d; want %d (the failed save said maybe written: %t)", got.Serial, acknowledged, unavailable.MaybeWritten)
	}
	wantAll(t, got, got.Serial)
	next := addTo(got)
	start = time.Now()
	if err := b.Save(t.Context(), next); err != nil {
		t.Fatalf("first save after the restart: %v", err)
	}
	t.Logf("first save after the restart took %s", time.Since(start).Round(time.Millisecond))
	got, err = b.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, got, next.Serial)
}

// A lock holder killed with SIGKILL, which runs no cleanup, frees the lock
// when its lease expires.
func TestLockHolderKilled(t *testing.T) {
	c := etcdtest.Start(t)
	const ttl = 3 * time.Second
	b := newBackend(t, c, Options{LockTTL: ttl})
	h := startHelper(t, "lock", c.Endpoints(), b.prefix, ttl)
	id := h.expect(t, "locked")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	_, err := b.Lock(ctx, state.NewLockInfo("apply"))
	cancel()
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("lock while a process holds it = %v; want *LockedError", err)
	}
	if locked.Holder.ID != id || locked.Holder.PID != h.cmd.Process.Pid {
		t.Errorf("holder = %+v; want ID %s, PID %d", locked.Holder, id, h.cmd.Process.Pid)
	}
	if err := syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
	killed := time.Now()
	// The lease expires at most ttl after the holder's last renewal; the
	// leader checks for expired leases every 500 ms and revokes them
	// through the log.
	ctx, cancel = context.WithTimeout(t.Context(), ttl+2*time.Second)
	defer cancel()
	got, err := b.Lock(ctx, state.NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("lock within the TTL (%s) after the holder was killed: %v", ttl, err)
	}
	t.Logf("lock taken %s after the holder was killed (TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
	if err := b.Unlock(t.Context(), got); err != nil {
		t.Fatal(err)
	}
}

// A holder whose lock was force-unlocked by another process cannot save
// or unlock any more, and does not touch the new holder's lock.
func TestForceUnlockedHolderStops(t *testing.T) {
	c := etcdtest.Start(t)
	holder := newBackend(t, c, Options{})
	operator := newBackend(t, c, Options{Prefix: holder.prefix})
	s := statetest.Sample(1, 1)
	if err := holder.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	id, err := holder.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	if err := operator.ForceUnlock(t.Context(), id); err != nil {
		t.Fatalf("force-unlock: %v", err)
	}
	next, err := operator.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	s.Serial++
	if err := holder.Save(t.Context(), s); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("save by the broken holder = %v; want ErrLockLost", err)
	}
	if err := holder.Unlock(t.Context(), id); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("unlock by the broken holder = %v; want ErrLockLost", err)
	}
	if err := operator.Save(t.Context(), s); err != nil {
		t.Fatalf("save by the new holder: %v", err)
	}
	if err := operator.Unlock(t.Context(), next); err != nil {
		t.Fatalf("the new holder's unlock: %v", err)
	}
}

// A holder whose lease ends (as when it is cut off from etcd for longer
// than the TTL) loses its lock: its save fails saying so, and its next
// Lock works on a new lease.
func TestLeaseExpiredHolderStops(t *testing.T) {
	c := etcdtest.Start(t)
	b := newBackend(t, c, Options{})
	s := statetest.Sample(1, 1)
	if err := b.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	id, err := b.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	session := b.session
	b.mu.Unlock()
	// What etcd does when the lease's TTL passes without a renewal.
	if _, err := b.client.Revoke(t.Context(), session.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-session.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the lease session did not notice the revoked lease")
	}
	s.Serial++
	err = b.Save(t.Context(), s)
	if !errors.Is(err, state.ErrLockLost) || !strings.Contains(err.Error(), "lease expired") {
		t.Fatalf("save after the lease ended = %v; want ErrLockLost saying the lease expired", err)
	}
	if err := b.Unlock(t.Context(), id); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("unlock after the lease ended = %v; want ErrLockLost", err)
	}
	again, err := b.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("lock on a new lease: %v", err)
	}
	if err := b.Save(t.Context(), s); err != nil {
		t.Fatalf("save under the new lock: %v", err)
	}
	if err := b.Unlock(t.Context(), again); err != nil {
		t.Fatal(err)
	}
}

package reconcile

import (
	"testing"
	"time"
)

// TestBackoffSequence repairs an instance every time its backoff allows:
// the waits are 10s, 20s, 40s … capped at 5m, like the kubelet's.
func TestBackoffSequence(t *testing.T) {
	b := newBackoffs(DefaultBackoff)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if at := b.until("web[0]", now); !at.IsZero() {
		t.Fatalf("first repair must be immediate, got a wait until %s", at)
	}
	want := []time.Duration{
		10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second,
		5 * time.Minute, 5 * time.Minute, 5 * time.Minute,
	}
	for i, w := range want {
		delay, repairs := b.record("web[0]", now)
		if delay != w || repairs != i+1 {
			t.Fatalf("repair %d: next wait %s (repairs %d), want %s (%d)", i+1, delay, repairs, w, i+1)
		}
		// A crash right after the repair must wait the whole delay.
		if at := b.until("web[0]", now.Add(time.Second)); !at.Equal(now.Add(delay)) {
			t.Fatalf("repair %d: may repair again at %s, want %s", i+1, at, now.Add(delay))
		}
		if at := b.until("web[0]", now.Add(delay)); !at.IsZero() {
			t.Fatalf("repair %d: still waiting at the end of the delay (until %s)", i+1, at)
		}
		now = now.Add(delay)
	}
	if at := b.until("web[1]", now); !at.IsZero() {
		t.Error("another instance inherited web[0]'s backoff")
	}
}

// TestBackoffReset forgets an instance's backoff once it has gone 10
// minutes without a repair, and not a moment before.
func TestBackoffReset(t *testing.T) {
	tests := []struct {
		name      string
		quiet     time.Duration
		wantDelay time.Duration
		wantCount int
	}{
		{name: "crash after 9m59s keeps doubling", quiet: 10*time.Minute - time.Second, wantDelay: 160 * time.Second, wantCount: 5},
		{name: "crash after 10m starts over", quiet: 10 * time.Minute, wantDelay: 10 * time.Second, wantCount: 1},
		{name: "crash after an hour starts over", quiet: time.Hour, wantDelay: 10 * time.Second, wantCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackoffs(DefaultBackoff)
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			var last time.Time
			for range 4 { // waits 10s, 20s, 40s, 80s
				d, _ := b.record("db", now)
				last, now = now, now.Add(d)
			}
			now = last.Add(tt.quiet)
			if tt.wantCount == 1 {
				if at := b.until("db", now); !at.IsZero() {
					t.Fatalf("after %s running, the repair waits until %s", tt.quiet, at)
				}
			}
			d, n := b.record("db", now)
			if d != tt.wantDelay || n != tt.wantCount {
				t.Errorf("next wait %s after repair %d, want %s after repair %d", d, n, tt.wantDelay, tt.wantCount)
			}
		})
	}
}

func TestBackoffExpire(t *testing.T) {
	b := newBackoffs(Backoff{Initial: time.Second, Max: 4 * time.Second, ResetAfter: time.Minute})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b.record("a", now)
	b.record("b", now.Add(30*time.Second))
	got := b.expire(now.Add(time.Minute))
	if len(got) != 1 || got[0] != "a" {
		t.Errorf("expired %v, want [a]", got)
	}
	if d, _ := b.record("b", now.Add(40*time.Second)); d != 2*time.Second {
		t.Errorf("b's backoff was lost: next wait %s, want 2s", d)
	}
}

func TestBackoffDefaults(t *testing.T) {
	got := Backoff{Initial: time.Minute, Max: time.Second}.orDefault()
	want := Backoff{Initial: time.Minute, Max: time.Minute, ResetAfter: 10 * time.Minute}
	if got != want {
		t.Errorf("orDefault = %+v, want %+v", got, want)
	}
}

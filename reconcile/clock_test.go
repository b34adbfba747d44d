package reconcile

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when a test advances it. Timers
// fire in deadline order as it passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	// added is closed and replaced whenever a timer is made, so that a test
	// can wait for the code under test to start waiting.
	added chan struct{}
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	ch    chan time.Time
	done  bool
}

var _ Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), added: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.done = true
		t.ch <- c.now
	} else {
		c.timers = append(c.timers, t)
	}
	close(c.added)
	c.added = make(chan struct{})
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves the clock by d and fires every timer it passes.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	var keep []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			t.ch <- c.now
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// pendingAt reports whether a live timer waits for exactly at.
func (c *fakeClock) pendingAt(at time.Time) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if !t.done && t.at.Equal(at) {
			return true, nil
		}
	}
	return false, c.added
}

// waitTimerAt blocks until some code waits for a timer due at at, or
// fails the test after a (real) deadline.
func (c *fakeClock) waitTimerAt(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		ok, added := c.pendingAt(at)
		if ok {
			return
		}
		select {
		case <-added:
		case <-deadline.C:
			t.Fatalf("no timer due at %s was made (now %s)", at.Format(time.TimeOnly), c.Now().Format(time.TimeOnly))
		}
	}
}

func TestFakeClockFiresInOrder(t *testing.T) {
	c := newFakeClock()
	start := c.Now()
	late := c.NewTimer(start.Add(2 * time.Second))
	early := c.NewTimer(start.Add(time.Second))
	past := c.NewTimer(start.Add(-time.Second))
	select {
	case <-past.C():
	default:
		t.Fatal("a timer in the past did not fire at once")
	}
	c.Advance(time.Second)
	select {
	case <-early.C():
	default:
		t.Fatal("the 1s timer did not fire after 1s")
	}
	select {
	case <-late.C():
		t.Fatal("the 2s timer fired after 1s")
	default:
	}
	if !late.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	c.Advance(time.Hour)
	select {
	case <-late.C():
		t.Fatal("a stopped timer fired")
	default:
	}
}

package reconcile

import (
	"sync"
	"time"
)

// Backoff is the crash-loop policy for repeated repairs of one instance,
// the kubelet's: the first repair is immediate; the next one waits Initial
// after it, then twice as long each time, never more than Max; once an
// instance has gone ResetAfter without needing a repair (it kept running),
// the next repair is immediate again.
//
// Docker's own restart policy is the counter-example: it doubles from
// 100 ms without a cap worth the name, and never resets while the
// container keeps crashing.
type Backoff struct {
	// Initial is the wait before the second repair.
	Initial time.Duration
	// Max caps the wait.
	Max time.Duration
	// ResetAfter is how long an instance must go without a repair for its
	// backoff to be forgotten.
	ResetAfter time.Duration
}

// DefaultBackoff is the kubelet's policy: 10s, doubling, capped at 5
// minutes, reset after 10 minutes without a repair.
var DefaultBackoff = Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, ResetAfter: 10 * time.Minute}

// orDefault fills zero fields from DefaultBackoff.
func (b Backoff) orDefault() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = DefaultBackoff.ResetAfter
	}
	return b
}

// backoffEntry is one instance's repair history.
type backoffEntry struct {
	// last is when the instance was last repaired.
	last time.Time
	// delay is the wait after last before the next repair.
	delay time.Duration
	// repairs counts the repairs since the backoff was last reset.
	repairs int
}

// backoffs tracks the backoff of every instance, by address. It is safe
// for concurrent use.
type backoffs struct {
	policy Backoff
	mu     sync.Mutex
	byAddr map[string]*backoffEntry
}

func newBackoffs(policy Backoff) *backoffs {
	return &backoffs{policy: policy.orDefault(), byAddr: map[string]*backoffEntry{}}
}

// until returns when the instance addr may be repaired next: the zero time
// when it may be repaired now. An instance whose last repair is ResetAfter
// old or older is forgotten first.
func (b *backoffs) until(addr string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.byAddr[addr]
	if e == nil {
		return time.Time{}
	}
	if now.Sub(e.last) >= b.policy.ResetAfter {
		delete(b.byAddr, addr)
		return time.Time{}
	}
	if at := e.last.Add(e.delay); at.After(now) {
		return at
	}
	return time.Time{}
}

// record notes a repair of addr at now (successful or not: a failing
// repair must not be retried in a tight loop either) and returns the wait
// before the one after it.
func (b *backoffs) record(addr string, now time.Time) (delay time.Duration, repairs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.byAddr[addr]
	switch {
	case e == nil || now.Sub(e.last) >= b.policy.ResetAfter:
		e = &backoffEntry{delay: b.policy.Initial}
		b.byAddr[addr] = e
	default:
		e.delay = min(2*e.delay, b.policy.Max)
	}
	e.last = now
	e.repairs++
	return e.delay, e.repairs
}

// forget drops addr's history (the instance left the state).
func (b *backoffs) forget(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byAddr, addr)
}

// expire forgets every instance that has gone ResetAfter without a repair
// and returns the addresses forgotten.
func (b *backoffs) expire(now time.Time) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for addr, e := range b.byAddr {
		if now.Sub(e.last) >= b.policy.ResetAfter {
			delete(b.byAddr, addr)
			out = append(out, addr)
		}
	}
	return out
}

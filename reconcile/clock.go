package reconcile

import "time"

// Clock is the time source of every wait the reconciler makes: backoff
// delays, resync intervals, host reconnects, and the durations it reports.
// Tests inject a fake one, so that a five-minute backoff takes no real time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once the clock reaches at; an at
	// in the past fires at once.
	NewTimer(at time.Time) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C receives the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
}

// systemClock is the real clock.
type systemClock struct{}

// Now returns time.Now().
func (systemClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer for the time left until at.
func (systemClock) NewTimer(at time.Time) Timer {
	return systemTimer{time.NewTimer(time.Until(at))}
}

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dockplan/dockplan/state"
)

// lockAttempt is how long a first try for the state lock waits: a free lock
// is taken at once, and -lock-timeout 0 means this long.
const lockAttempt = 100 * time.Millisecond

// lock takes b's lock for op, waiting up to timeout. When another dockplan
// holds it and timeout allows waiting, it says so on w first, naming the
// holder, so that a wait of minutes is not silent.
func (b *backend) lock(ctx context.Context, op string, timeout time.Duration, w io.Writer) (string, error) {
	info := state.NewLockInfo(op)
	info.Version = Version
	deadline := time.Now().Add(max(timeout, lockAttempt))
	try := func(d time.Time) (string, error) {
		lctx, cancel := context.WithDeadline(ctx, d)
		defer cancel()
		return b.Lock(lctx, info)
	}
	first := time.Now().Add(lockAttempt)
	if deadline.Before(first) {
		first = deadline
	}
	id, err := try(first)
	var locked *state.LockedError
	if err == nil || !errors.As(err, &locked) || time.Until(deadline) <= 0 || ctx.Err() != nil {
		return id, err
	}
	fmt.Fprintf(w, "Waiting up to %s for the state lock, which another dockplan holds: %s\n",
		time.Until(deadline).Round(time.Second), locked.Holder)
	return try(deadline)
}

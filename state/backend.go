package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Backend stores one project's state and guards its writers with a lock.
// The local File is the first implementation; a remote store (etcd) must
// keep the same contract and pass the same conformance suite
// (state/statetest).
//
// Save is a compare-and-swap on the serial (see CheckSave for the exact
// rule): a writer that read an older state gets *SerialConflictError and
// nothing is written, never a silent overwrite. Save never interleaves with
// another writer: when this Backend value does not hold the lock, Save holds
// it for the duration of the write, waiting like Lock, and fails with
// *LockedError when another holder keeps it until ctx is done.
//
// The lock belongs to the Backend value that took it, not to a goroutine.
// It is not re-entrant: a second Lock on the same value waits like any
// other caller. A holder that dies frees the lock (the file backend through
// the OS file lock, etcd through the lease).
type Backend interface {
	// Load returns the stored state, or nil, nil when nothing was ever
	// saved. A state of a newer format fails with an error wrapping
	// ErrNewerFormat.
	Load(ctx context.Context) (*State, error)
	// Save stores s if CheckSave allows it, atomically: a reader sees the
	// old state or the new one, never a mix. s is not modified; the caller
	// bumps s.Serial before every Save.
	Save(ctx context.Context, s *State) error
	// Lock takes the lock for one whole operation (apply, destroy, state
	// rm, a reconcile pass) and records info as the holder, so others can
	// say who holds it. It waits until ctx is done, then fails with
	// *LockedError naming the holder. An empty info.ID is filled with a
	// random one. It returns the lock ID, which Unlock needs.
	Lock(ctx context.Context, info LockInfo) (lockID string, err error)
	// Unlock releases the lock lockID that this Backend value holds. An ID
	// it does not hold fails (errors.Is ErrNotLocked), and a lock that was
	// force-unlocked meanwhile fails with ErrLockLost after releasing what
	// is left; neither touches another holder's lock.
	Unlock(ctx context.Context, lockID string) error
	// ForceUnlock breaks the lock lockID whoever holds it, for an operator
	// who knows its holder is gone or stuck. Only the holder's exact ID
	// works: another ID fails with ErrWrongLockID naming the holder, and
	// nothing locked fails with ErrNotLocked. A live holder whose lock was
	// broken cannot save any more (ErrLockLost).
	ForceUnlock(ctx context.Context, lockID string) error
}

// Header is the part of a stored state that Save checks before writing:
// its format, lineage and serial.
type Header struct {
	// FormatVersion is the stored format; newer than FormatVersion means
	// the state must not be overwritten.
	FormatVersion int `json:"format_version"`
	// Lineage is the stored state's lineage.
	Lineage string `json:"lineage"`
	// Serial is the stored state's serial.
	Serial int64 `json:"serial"`
}

// ParseHeader decodes only the header of an encoded state, without
// building its instances. where names the source in errors. A newer format
// fails with an error wrapping ErrNewerFormat.
func ParseHeader(where string, data []byte) (Header, error) {
	var h struct {
		FormatVersion *int   `json:"format_version"`
		Lineage       string `json:"lineage"`
		Serial        int64  `json:"serial"`
	}
	err := json.Unmarshal(data, &h)
	if err == nil && h.FormatVersion != nil && *h.FormatVersion <= FormatVersion && *h.FormatVersion >= 1 &&
		lineagePattern.MatchString(h.Lineage) && h.Serial >= 0 {
		return Header{FormatVersion: *h.FormatVersion, Lineage: h.Lineage, Serial: h.Serial}, nil
	}
	// Only on the error path: a full parse words every problem the same
	// way Load does.
	if _, perr := Parse(where, data); perr != nil {
		return Header{}, perr
	}
	return Header{}, &ParseError{Path: where, Err: fmt.Errorf("unreadable header (%v); restore it from %s.backup", err, where)}
}

// CheckSave is the rule every Backend applies before writing next over
// what is stored (stored is nil when nothing is stored). where names the
// state in errors.
//
//   - next must be valid: format FormatVersion, a UUID lineage, serial ≥ 1,
//     instances keyed by their own address with a host and a name. A new
//     state has serial 0 (New); the caller bumps it to 1 for the first Save.
//   - Nothing stored: any such next is written, whatever its serial (a new
//     state starts at 1; a state migrated from another backend keeps its
//     serial).
//   - A stored state of a newer format is never overwritten (ErrNewerFormat).
//   - A stored state of another lineage is never overwritten (*LineageError).
//   - Otherwise next.Serial must be exactly stored.Serial+1: anything else
//     is *SerialConflictError, the caller having read a state that is no
//     longer the stored one.
func CheckSave(where string, stored *Header, next *State) error {
	if err := validForSave(where, next); err != nil {
		return err
	}
	return compareStored(where, stored, next)
}

// compareStored is the compare half of CheckSave, for a valid next.
func compareStored(where string, stored *Header, next *State) error {
	if stored == nil {
		return nil
	}
	if stored.FormatVersion > FormatVersion {
		return &ParseError{Path: where, Err: fmt.Errorf("%w: format %d, this dockplan writes %d; upgrade dockplan (the stored state is left untouched)", ErrNewerFormat, stored.FormatVersion, FormatVersion)}
	}
	if stored.Lineage != next.Lineage {
		return &LineageError{Where: where, Stored: stored.Lineage, Attempted: next.Lineage}
	}
	if stored.Serial != next.Serial-1 {
		return &SerialConflictError{Where: where, Stored: stored.Serial, Attempted: next.Serial}
	}
	return nil
}

// validForSave is the first half of CheckSave: a state dockplan may write
// and read back.
func validForSave(where string, s *State) error {
	var err error
	switch {
	case s == nil:
		err = errors.New("no state given")
	case s.FormatVersion != FormatVersion:
		err = fmt.Errorf("format_version %d: this dockplan writes format %d only", s.FormatVersion, FormatVersion)
	case s.Serial < 1:
		err = fmt.Errorf("serial %d: bump Serial before every Save (the first save is serial 1)", s.Serial)
	default:
		c := *s // check fills a nil Instances map; leave the caller's value alone
		err = c.check()
	}
	if err != nil {
		return fmt.Errorf("cannot save state %s: %w (a bug in dockplan; nothing was written)", where, err)
	}
	return nil
}

// SerialConflictError is a Save refused because the stored state is not the
// one the writer read: another dockplan saved in between (or a backup was
// restored). Nothing was written.
type SerialConflictError struct {
	// Where names the state (a file path, a key).
	Where string
	// Stored is the serial of the stored state.
	Stored int64
	// Attempted is the serial of the refused state; the writer expected
	// Attempted-1 to be stored.
	Attempted int64
}

// Error says which serials differ and what to do.
func (e *SerialConflictError) Error() string {
	why := "another dockplan wrote it since this run read it"
	if e.Stored < e.Attempted-1 {
		why = "the stored state is older than the one this run read (was it restored from a backup?)"
	}
	return fmt.Sprintf("the state %s changed under this run: serial %d stored, %d expected; %s. Nothing was written; run plan again to see the current state",
		e.Where, e.Stored, e.Attempted-1, why)
}

// LineageError is a Save refused because the stored state is another state
// (another lineage) than the one being written. Nothing was written.
type LineageError struct {
	// Where names the state (a file path, a key).
	Where string
	// Stored and Attempted are the stored and the refused lineages.
	Stored, Attempted string
}

// Error names both lineages and what to do.
func (e *LineageError) Error() string {
	return fmt.Sprintf("%s holds another state (lineage %s) than the one this run read (lineage %s); nothing was written. Point dockplan at the right state, or move that one away if it is not needed",
		e.Where, e.Stored, e.Attempted)
}

// Lock errors that callers can test with errors.Is.
var (
	// ErrNotLocked is returned when the lock named is not held: by this
	// Backend value for Unlock, by anyone for ForceUnlock.
	ErrNotLocked = errors.New("the state is not locked")
	// ErrWrongLockID is returned when ForceUnlock is given an ID that is
	// not the holder's.
	ErrWrongLockID = errors.New("wrong lock ID")
	// ErrLockLost is returned when this Backend value's lock was
	// force-unlocked while it held it; it must not save any more.
	ErrLockLost = errors.New("the state lock was force-unlocked while this run held it")
)

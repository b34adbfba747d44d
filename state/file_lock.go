package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Polling bounds while another holder has the lock: flock cannot wait for
// a context, so Lock retries without blocking, backing off from
// minLockPoll to maxLockPoll.
const (
	minLockPoll = 5 * time.Millisecond
	maxLockPoll = 200 * time.Millisecond
)

// maxLockInfo bounds how much of a lock file is read as holder info.
const maxLockInfo = 64 << 10

// Lock takes the state lock for a whole operation and writes info into the
// lock file as the holder. It polls until ctx is done, then fails with
// *LockedError naming the holder.
func (f *File) Lock(ctx context.Context, info LockInfo) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if info.ID == "" {
		info.ID = newUUID()
	}
	if info.Created.IsZero() {
		info.Created = time.Now().UTC().Round(0)
	}
	info.Path = f.path
	fd, err := f.acquire(ctx, info)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held != nil {
		// This value's earlier lock was force-unlocked from outside (else
		// the flock above could not have been taken): keep it as lost so
		// that its Unlock says so.
		if f.lost != nil {
			_ = f.lost.fd.Close()
		}
		f.lost = f.held
	}
	f.held = &heldLock{info: info, fd: fd}
	return info.ID, nil
}

// Unlock releases the lock lockID held by this value and clears its holder
// info. The lock file itself stays (empty), which keeps this free of races
// with a force-unlock.
func (f *File) Unlock(_ context.Context, lockID string) error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	f.mu.Lock()
	held, lost := f.held, f.lost
	switch {
	case held != nil && held.info.ID == lockID:
		f.held = nil
	case lost != nil && lost.info.ID == lockID:
		f.lost = nil
		f.mu.Unlock()
		_ = lost.fd.Close()
		return fmt.Errorf("%w (lock %s); its changes were saved up to the force-unlock", ErrLockLost, lockID)
	default:
		f.mu.Unlock()
		return fmt.Errorf("%w: lock %s is not held by this dockplan for %s; nothing was unlocked", ErrNotLocked, lockID, f.path)
	}
	f.mu.Unlock()
	current := isCurrent(held.fd, f.lockPath())
	if err := f.release(held.fd); err != nil {
		return err
	}
	if !current {
		return fmt.Errorf("%w (lock %s); its changes were saved up to the force-unlock", ErrLockLost, lockID)
	}
	return nil
}

// ForceUnlock breaks the lock lockID.
//
// With the file backend a dead holder never blocks (the kernel dropped
// its flock); its holder info stays in the lock file, and ForceUnlock with
// that ID just clears it. A live holder (hung, or run by mistake) keeps
// its flock, which no other process can take from it; ForceUnlock then
// removes the lock file, so the next Lock creates a new one and takes it
// at once. The old holder notices on its next Save or Unlock
// (ErrLockLost) and writes nothing more: a Save under a lock checks first
// that its lock file is still the one at <path>.lock. Whatever that holder
// is doing to containers at that moment goes on; the serial check still
// refuses any write from it.
func (f *File) ForceUnlock(_ context.Context, lockID string) error {
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	f.mu.Lock()
	if held := f.held; held != nil && held.info.ID == lockID {
		f.held = nil
		f.mu.Unlock()
		return f.release(held.fd)
	}
	f.mu.Unlock()
	fd, err := os.OpenFile(f.lockPath(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s has no lock file; nothing to unlock", ErrNotLocked, f.path)
	}
	if err != nil {
		return fmt.Errorf("cannot open the lock file %s: %w", f.lockPath(), err)
	}
	defer fd.Close()
	free, err := tryFlock(fd)
	if err != nil {
		return fmt.Errorf("cannot lock %s: %w", f.lockPath(), err)
	}
	holder := readInfo(fd)
	if err := checkForceID(f.path, lockID, holder); err != nil {
		return err
	}
	if free {
		// Leftover info of a holder that is gone.
		_ = fd.Truncate(0)
		return unflock(fd)
	}
	if !isCurrent(fd, f.lockPath()) || readInfo(fd).ID != lockID {
		return fmt.Errorf("the lock on %s changed while force-unlocking it; run force-unlock again with the new holder's ID if it is still needed", f.path)
	}
	if err := os.Remove(f.lockPath()); err != nil {
		return fmt.Errorf("cannot remove the lock file %s: %w; make its directory writable", f.lockPath(), err)
	}
	return nil
}

// checkForceID refuses a force-unlock whose ID is not the holder's.
func checkForceID(path, lockID string, holder LockInfo) error {
	if holder.ID == "" {
		return fmt.Errorf("%w: %s has no lock holder; nothing to unlock", ErrNotLocked, path)
	}
	if holder.ID != lockID {
		return fmt.Errorf("%w: %s is not the lock on %s, which is %s; force-unlock needs the holder's exact lock ID",
			ErrWrongLockID, lockID, path, holder)
	}
	return nil
}

// acquire takes the flock on the lock file and writes info into it,
// polling until ctx is done.
func (f *File) acquire(ctx context.Context, info LockInfo) (*os.File, error) {
	wait := minLockPoll
	for {
		fd, holder, err := f.tryAcquire()
		if err != nil {
			return nil, err
		}
		if fd != nil {
			if err := writeInfo(fd, info); err != nil {
				_ = f.release(fd)
				return nil, fmt.Errorf("cannot write the lock holder into %s: %w; check free space", f.lockPath(), err)
			}
			return fd, nil
		}
		if holder == nil {
			continue // the lock file was replaced under us: try the new one now
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, &LockedError{Where: f.path, Holder: *holder, Err: ctx.Err()}
		case <-timer.C:
		}
		wait = min(2*wait, maxLockPoll)
	}
}

// tryAcquire tries the flock once. It returns the locked file, or the
// holder's info when someone else holds it, or neither when the lock file
// was removed (force-unlocked) between opening and locking it.
func (f *File) tryAcquire() (*os.File, *LockInfo, error) {
	fd, err := os.OpenFile(f.lockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the lock file %s: %w; make the directory writable", f.lockPath(), err)
	}
	ok, err := tryFlock(fd)
	if err != nil {
		_ = fd.Close()
		return nil, nil, fmt.Errorf("cannot lock %s: %w", f.lockPath(), err)
	}
	if !ok {
		holder := readInfo(fd)
		_ = fd.Close()
		return nil, &holder, nil
	}
	if !isCurrent(fd, f.lockPath()) {
		_ = fd.Close()
		return nil, nil, nil
	}
	_ = fd.Chmod(0o600) // a lock file made by hand or an older tool
	return fd, nil, nil
}

// release clears the holder info, drops the flock and closes the file.
func (f *File) release(fd *os.File) error {
	_ = fd.Truncate(0)
	uerr := unflock(fd)
	cerr := fd.Close()
	if err := errors.Join(uerr, cerr); err != nil {
		return fmt.Errorf("cannot release the lock file %s: %w", f.lockPath(), err)
	}
	return nil
}

// isCurrent reports whether fd is still the file at path: a force-unlock
// removes the lock file that a live holder has open.
func isCurrent(fd *os.File, path string) bool {
	a, err := fd.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// writeInfo replaces the lock file's content with info as JSON.
func writeInfo(fd *os.File, info LockInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := fd.Truncate(0); err != nil {
		return err
	}
	_, err = fd.WriteAt(append(data, '\n'), 0)
	return err
}

// readInfo reads the holder info from a lock file; the zero LockInfo when
// it is empty or not yet complete.
func readInfo(fd *os.File) LockInfo {
	var info LockInfo
	data, err := io.ReadAll(io.NewSectionReader(fd, 0, maxLockInfo))
	if err != nil || len(data) == 0 {
		return LockInfo{}
	}
	if json.Unmarshal(data, &info) != nil {
		return LockInfo{}
	}
	return info
}

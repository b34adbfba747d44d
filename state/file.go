package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// File is the local state backend: one JSON file (mode 0600), the previous
// version beside it as <path>.backup, and a lock file <path>.lock.
//
// Save writes <path>.tmp, fsyncs it, links the current file to
// <path>.backup, renames the temp file over <path> and fsyncs the
// directory: a reader or a crash at any moment sees the old state or the
// new one. A leftover <path>.tmp from a crash is ignored and overwritten.
//
// The lock is an OS lock (flock) on <path>.lock, held on an open file for
// the whole operation; the holder's LockInfo is written into that file for
// others to read. The kernel drops the lock when the holder exits or is
// killed, so a dead holder never blocks: leftover holder info in a lock
// file nobody has flocked is ignored. See ForceUnlock for breaking a live
// holder's lock.
//
// Save is cheap enough to run after every applier step: its cost is one
// encoding of the state and two fsyncs. It checks the stored serial on
// every Save, held lock or not, so a writer that ignores the lock (a hand
// edit) is caught too; that check reads only the stored header, the first
// few hundred bytes of the file, because Encode writes format_version,
// lineage and serial before the instances.
type File struct {
	path string

	// saveMu serializes Save, Unlock and ForceUnlock on this value, so an
	// Unlock never closes the lock file under a Save in flight.
	saveMu sync.Mutex
	// mu guards held and lost.
	mu sync.Mutex
	// held is the lock this value holds, nil when none.
	held *heldLock
	// lost is a lock of this value that was force-unlocked from outside and
	// replaced by a newer Lock; Unlock of its ID reports ErrLockLost.
	lost *heldLock
}

// heldLock is one lock taken by Lock.
type heldLock struct {
	info LockInfo
	// fd is the open lock file carrying the flock.
	fd *os.File
}

// maxHeaderPeek bounds the bytes read for the stored header before Save
// falls back to reading the whole file.
const maxHeaderPeek = 4 << 10

var _ Backend = (*File)(nil)

// NewFile returns the file backend for the state file at path. Nothing is
// read or created until it is used.
func NewFile(path string) *File {
	return &File{path: path}
}

// Path returns the state file's path.
func (f *File) Path() string { return f.path }

func (f *File) lockPath() string   { return f.path + ".lock" }
func (f *File) backupPath() string { return f.path + ".backup" }
func (f *File) tempPath() string   { return f.path + ".tmp" }

// Load reads and checks the state file; nil, nil when there is none.
func (f *File) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &ParseError{Path: f.path, Err: fmt.Errorf("%w; check the file's owner and permissions", err)}
	}
	return Parse(f.path, data)
}

// Save writes s atomically if CheckSave allows it over the stored state.
func (f *File) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validForSave(f.path, s); err != nil {
		return err
	}
	data, err := s.Encode()
	if err != nil {
		return fmt.Errorf("cannot encode state %s: %w", f.path, err)
	}
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	held := f.heldLock()
	if held == nil {
		// Not holding the lock: hold it just for this write, so that the
		// check of the stored serial and the rename cannot interleave
		// with another writer's.
		info := NewLockInfo("save")
		info.Path = f.path
		fd, err := f.acquire(ctx, info)
		if err != nil {
			return err
		}
		defer f.release(fd)
		return f.write(s, data)
	}
	if !isCurrent(held.fd, f.lockPath()) {
		return fmt.Errorf("%w (lock %s); nothing was written to %s. Another dockplan may be using the state now; run plan again when it is done",
			ErrLockLost, held.info.ID, f.path)
	}
	return f.write(s, data)
}

// write checks s against the stored header and replaces the file; the
// caller holds the flock.
func (f *File) write(s *State, data []byte) error {
	stored, err := f.storedHeader()
	if err != nil {
		return err
	}
	if err := compareStored(f.path, stored, s); err != nil {
		return err
	}
	return f.replace(data)
}

// storedHeader returns the stored header, nil when there is no state file.
func (f *File) storedHeader() (*Header, error) {
	fd, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &ParseError{Path: f.path, Err: fmt.Errorf("%w; check the file's owner and permissions (nothing was written)", err)}
	}
	defer fd.Close()
	if h, ok := peekHeader(fd); ok {
		return &h, nil
	}
	// Not in the order Encode writes, or not valid: read it all, for the
	// exact problem.
	var buf bytes.Buffer
	if _, err := fd.Seek(0, io.SeekStart); err != nil {
		return nil, &ParseError{Path: f.path, Err: err}
	}
	if _, err := buf.ReadFrom(fd); err != nil {
		return nil, &ParseError{Path: f.path, Err: err}
	}
	h, err := ParseHeader(f.path, buf.Bytes())
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// peekHeader reads the header from the start of an encoded state without
// scanning its instances, which Encode writes after format_version,
// lineage and serial. It reports false when the state does not start with
// a valid header of a format this dockplan writes. It trusts the first
// occurrence of each key: a state with duplicate keys, which no dockplan
// writes, may read differently in full (the last one counts there).
func peekHeader(r io.Reader) (Header, bool) {
	dec := json.NewDecoder(io.LimitReader(r, maxHeaderPeek))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return Header{}, false
	}
	var h Header
	seen := map[string]bool{}
	for len(seen) < 3 {
		key, err := dec.Token()
		if err != nil || seen[fmt.Sprint(key)] {
			return Header{}, false
		}
		var target any
		switch key {
		case "format_version":
			target = &h.FormatVersion
		case "lineage":
			target = &h.Lineage
		case "serial":
			target = &h.Serial
		default:
			return Header{}, false
		}
		if err := dec.Decode(target); err != nil {
			return Header{}, false
		}
		seen[key.(string)] = true
	}
	ok := h.FormatVersion >= 1 && h.FormatVersion <= FormatVersion && lineagePattern.MatchString(h.Lineage) && h.Serial >= 0
	return h, ok
}

// replace puts data at f.path: temp file, fsync, backup, rename, directory
// fsync.
func (f *File) replace(data []byte) error {
	tmp := f.tempPath()
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("cannot write the new state beside %s: %w; make the directory writable and check free space (the state file is unchanged)", f.path, err)
	}
	if err := f.backup(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cannot keep the previous state as %s: %w; make the directory writable (the state file is unchanged)", f.backupPath(), err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cannot replace %s: %w (the state file is unchanged)", f.path, err)
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("the new state is in %s, but its directory could not be synced, so a power loss may bring back the previous one: %w", f.path, err)
	}
	return nil
}

// backup makes the current state file <path>.backup (mode 0600), replacing
// the older backup atomically. A hard link costs no copy; a file system
// without hard links gets a copy.
func (f *File) backup() error {
	tmp := f.backupPath() + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	err := os.Link(f.path, tmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // first save: nothing to keep
	}
	if err != nil {
		data, rerr := os.ReadFile(f.path)
		if errors.Is(rerr, fs.ErrNotExist) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		if err := writeSynced(tmp, data); err != nil {
			return err
		}
	} else if err := os.Chmod(tmp, 0o600); err != nil {
		// The link shares the current file's inode, which may have been
		// created by hand with a wider mode; it is replaced next anyway.
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, f.backupPath())
}

// writeSynced creates name afresh with mode 0600, writes data and fsyncs
// it. A leftover file of that name is replaced.
func writeSynced(name string, data []byte) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fd, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = fd.Chmod(0o600) // exactly 0600 whatever the umask
	if err == nil {
		_, err = fd.Write(data)
	}
	if err == nil {
		err = fd.Sync()
	}
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
	}
	return err
}

// syncDir fsyncs a directory so that renames in it survive a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !ignorableSyncError(err) {
		return err
	}
	return nil
}

// heldLock returns the lock this value holds, nil when none.
func (f *File) heldLock() *heldLock {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

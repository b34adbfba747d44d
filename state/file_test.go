package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/statetest"
)

// rawFile is the file backend with the raw access the conformance suite
// needs.
type rawFile struct{ *state.File }

func (r rawFile) PutRaw(t *testing.T, data []byte) {
	t.Helper()
	if err := os.WriteFile(r.Path(), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (r rawFile) GetRaw(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(r.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFileConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Backend {
		return rawFile{state.NewFile(filepath.Join(t.TempDir(), state.DefaultPath))}
	})
}

// newFile returns a file backend in a new temporary directory.
func newFile(t *testing.T) *state.File {
	t.Helper()
	return state.NewFile(filepath.Join(t.TempDir(), state.DefaultPath))
}

func save(t *testing.T, f *state.File, s *state.State) {
	t.Helper()
	if err := f.Save(t.Context(), s); err != nil {
		t.Fatalf("save serial %d: %v", s.Serial, err)
	}
}

// serialOf reads the serial of the state file at path.
func serialOf(t *testing.T, path string) int64 {
	t.Helper()
	s, err := state.Read(path)
	if err != nil || s == nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s.Serial
}

func lockFor(t *testing.T, f *state.File, d time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	return f.Lock(ctx, state.NewLockInfo("apply"))
}

func TestFileModes(t *testing.T) {
	f := newFile(t)
	// A state file made by hand with a wide mode is tightened on save.
	if err := os.WriteFile(f.Path(), mustEncode(t, statetest.Sample(1, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := lockFor(t, f, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	save(t, f, statetest.Sample(2, 1))
	for _, path := range []string{f.Path(), f.Path() + ".backup", f.Path() + ".lock"} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o; want 600", filepath.Base(path), mode)
		}
	}
	if err := f.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t *testing.T, s *state.State) []byte {
	t.Helper()
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFileBackupHoldsPrevious(t *testing.T) {
	f := newFile(t)
	save(t, f, statetest.Sample(1, 1))
	if _, err := os.Stat(f.Path() + ".backup"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a first save made a backup: %v", err)
	}
	for serial := int64(2); serial <= 4; serial++ {
		save(t, f, statetest.Sample(serial, 1))
		if got := serialOf(t, f.Path()+".backup"); got != serial-1 {
			t.Errorf("after saving %d the backup holds serial %d; want %d", serial, got, serial-1)
		}
	}
	if _, err := os.Stat(f.Path() + ".backup.tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup temp file left behind: %v", err)
	}
}

// A crash after the temp file was written but before the rename leaves
// <path>.tmp beside the old state: the old state must still load, and the
// next save must go through.
func TestFileCrashBeforeRename(t *testing.T) {
	f := newFile(t)
	save(t, f, statetest.Sample(1, 2))
	half := mustEncode(t, statetest.Sample(2, 2))
	for _, leftover := range []string{f.Path() + ".tmp", f.Path() + ".backup.tmp"} {
		if err := os.WriteFile(leftover, half[:len(half)/2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := f.Load(t.Context())
	if err != nil || s.Serial != 1 {
		t.Fatalf("Load after a crash = %v, %v; want serial 1", s, err)
	}
	s.Serial++
	save(t, f, s)
	if got := serialOf(t, f.Path()); got != 2 {
		t.Errorf("serial after recovery = %d; want 2", got)
	}
	if _, err := os.Stat(f.Path() + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp file left behind after a save: %v", err)
	}
}

// readOnly makes dir read-only for this process: chmod for a normal user;
// the immutable attribute for root, whom permissions do not stop.
func readOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("running as root, and chattr +i does not work here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
}

func TestFileReadOnlyDirectory(t *testing.T) {
	tests := []struct {
		name     string
		lockFile bool // whether the lock file exists before the directory turns read-only
		want     string
	}{
		{name: "lock file exists", lockFile: true, want: "cannot write the new state beside"},
		{name: "no lock file yet", lockFile: false, want: "cannot open the lock file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFile(t)
			old := statetest.Sample(1, 1)
			save(t, f, old)
			if !tt.lockFile {
				if err := os.Remove(f.Path() + ".lock"); err != nil {
					t.Fatal(err)
				}
			}
			before := mustRead(t, f.Path())
			readOnly(t, filepath.Dir(f.Path()))
			err := f.Save(t.Context(), statetest.Sample(2, 1))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "make the directory writable") {
				t.Fatalf("Save in a read-only directory = %v; want %q and what to do", err, tt.want)
			}
			if after := mustRead(t, f.Path()); string(after) != string(before) {
				t.Error("the state file changed")
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Under the lock Save trusts what it last wrote, but a file changed behind
// its back (an edit in place, a copy over it) must still be seen.
func TestFileExternalWriterUnderLock(t *testing.T) {
	for _, inPlace := range []bool{true, false} {
		name := map[bool]string{true: "edited in place", false: "replaced"}[inPlace]
		t.Run(name, func(t *testing.T) {
			f := newFile(t)
			save(t, f, statetest.Sample(1, 1))
			id, err := lockFor(t, f, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Unlock(t.Context(), id)
			s, err := f.Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			external := mustEncode(t, statetest.Sample(5, 1))
			writeExternally(t, f.Path(), external, inPlace)
			s.Serial++
			var conflict *state.SerialConflictError
			if err := f.Save(t.Context(), s); !errors.As(err, &conflict) || conflict.Stored != 5 {
				t.Fatalf("Save after an external write = %v; want a conflict with serial 5", err)
			}
			if string(mustRead(t, f.Path())) != string(external) {
				t.Error("the external write was overwritten")
			}
		})
	}
}

func writeExternally(t *testing.T, path string, data []byte, inPlace bool) {
	t.Helper()
	if inPlace {
		fd, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fd.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := fd.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	tmp := path + ".other"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Save reads only the header that Encode writes first; a state whose keys
// come in another order (a hand edit) is read in full instead, and both
// give the same stored serial.
func TestFileStoredHeader(t *testing.T) {
	l := statetest.Lineage
	tests := []struct {
		name string
		data string
	}{
		{name: "as Encode writes it", data: string(mustEncode(t, statetest.Sample(3, 2)))},
		{name: "keys reordered", data: `{"project":"shop","instances":{},"serial":3,"lineage":"` + l + `","format_version":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFile(t)
			if err := os.WriteFile(f.Path(), []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			var conflict *state.SerialConflictError
			if err := f.Save(t.Context(), statetest.Sample(3, 1)); !errors.As(err, &conflict) || conflict.Stored != 3 {
				t.Fatalf("stale Save = %v; want a conflict with serial 3 stored", err)
			}
			save(t, f, statetest.Sample(4, 1))
		})
	}
}

// A Save from a File that does not hold the lock waits for the holder.
func TestFileSaveWaitsForHolder(t *testing.T) {
	f := newFile(t)
	save(t, f, statetest.Sample(1, 1))
	other := state.NewFile(f.Path())
	id, err := lockFor(t, f, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var locked *state.LockedError
	if err := other.Save(ctx, statetest.Sample(2, 1)); !errors.As(err, &locked) || locked.Holder.ID != id {
		t.Fatalf("Save while another File holds the lock = %v; want *LockedError naming %s", err, id)
	}
	if err := f.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	save(t, other, statetest.Sample(2, 1))
}

// ForceUnlock from another File breaks a live holder's lock: the next Lock
// gets it, and the old holder can neither save nor release the new lock.
func TestFileForceUnlockLiveHolder(t *testing.T) {
	holder := newFile(t)
	save(t, holder, statetest.Sample(1, 1))
	id, err := lockFor(t, holder, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	operator := state.NewFile(holder.Path())
	if err := operator.ForceUnlock(t.Context(), id); err != nil {
		t.Fatalf("ForceUnlock of a live holder: %v", err)
	}
	if err := holder.Save(t.Context(), statetest.Sample(2, 1)); !errors.Is(err, state.ErrLockLost) {
		t.Errorf("Save by a force-unlocked holder = %v; want ErrLockLost", err)
	}
	next, err := lockFor(t, operator, time.Second)
	if err != nil {
		t.Fatalf("Lock after ForceUnlock: %v", err)
	}
	if err := holder.Unlock(t.Context(), id); !errors.Is(err, state.ErrLockLost) {
		t.Errorf("Unlock by a force-unlocked holder = %v; want ErrLockLost", err)
	}
	if _, err := lockFor(t, state.NewFile(holder.Path()), 50*time.Millisecond); err == nil {
		t.Error("the old holder's Unlock released the new lock")
	}
	save(t, operator, statetest.Sample(2, 1))
	if err := operator.Unlock(t.Context(), next); err != nil {
		t.Fatal(err)
	}
}

// Holder info left in a lock file by a holder that is gone (its flock went
// with it) blocks nobody, and force-unlock with its ID clears it.
func TestFileStaleLockInfo(t *testing.T) {
	f := newFile(t)
	dead := state.NewLockInfo("apply")
	dead.PID = 999999
	data, err := json.Marshal(dead)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Path()+".lock", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := state.NewFile(f.Path()).ForceUnlock(t.Context(), "wrong"); !errors.Is(err, state.ErrWrongLockID) {
		t.Errorf("ForceUnlock with a wrong ID over stale info = %v; want ErrWrongLockID", err)
	}
	if err := f.ForceUnlock(t.Context(), dead.ID); err != nil {
		t.Fatalf("ForceUnlock of stale info: %v", err)
	}
	if info, _ := os.ReadFile(f.Path() + ".lock"); len(info) != 0 {
		t.Errorf("stale holder info not cleared: %s", info)
	}
	if err := os.WriteFile(f.Path()+".lock", data, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := lockFor(t, f, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("stale holder info blocked Lock: %v", err)
	}
	if err := f.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkFileSave is one applier step's save of a 100-instance state
// (and a 1000-instance one, to show the cost grows with the size only):
// under the lock (the applier's case), and without it (a Save that takes
// the lock for itself).
func BenchmarkFileSave(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, locked := range []bool{true, false} {
			name := map[bool]string{true: "locked", false: "unlocked"}[locked]
			b.Run(fmt.Sprintf("%s/instances=%d", name, n), func(b *testing.B) {
				benchmarkSave(b, n, locked)
			})
		}
	}
}

func benchmarkSave(b *testing.B, n int, locked bool) {
	f := state.NewFile(filepath.Join(b.TempDir(), state.DefaultPath))
	s := statetest.Sample(1, n)
	if err := f.Save(b.Context(), s); err != nil {
		b.Fatal(err)
	}
	if locked {
		id, err := f.Lock(b.Context(), state.NewLockInfo("apply"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Unlock(b.Context(), id)
	}
	data, _ := s.Encode()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s.Serial++
		if err := f.Save(b.Context(), s); err != nil {
			b.Fatal(err)
		}
	}
}

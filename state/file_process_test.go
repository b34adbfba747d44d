//go:build linux || darwin

package state_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/statetest"
)

// The test binary doubles as a helper process: with helperEnv set to a
// mode it runs that helper on the state file named by helperPathEnv
// instead of the tests.
const (
	helperEnv     = "DOCKPLAN_STATE_HELPER"
	helperPathEnv = "DOCKPLAN_STATE_HELPER_PATH"
)

// Exit codes of the save helper.
const (
	exitSaved    = 0
	exitError    = 1
	exitConflict = 3
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv(helperPathEnv)))
	}
	os.Exit(m.Run())
}

func runHelper(mode, path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := state.NewFile(path)
	in := bufio.NewReader(os.Stdin)
	switch mode {
	case "lock":
		// Take the lock, say so, and hold it until killed (or until the
		// parent goes away and stdin closes).
		id, err := f.Lock(ctx, state.NewLockInfo("apply"))
		if err != nil {
			fmt.Println("error", err)
			return exitError
		}
		fmt.Println("locked", id)
		_, _ = io.Copy(io.Discard, in)
		return exitSaved
	case "save":
		// Load, say so, wait for "go", then save the next serial.
		s, err := f.Load(ctx)
		if err != nil || s == nil {
			fmt.Println("error", err)
			return exitError
		}
		fmt.Println("loaded", s.Serial)
		if _, err := in.ReadString('\n'); err != nil {
			return exitError
		}
		s.Serial++
		addr := fmt.Sprintf("winner[%d]", os.Getpid())
		s.Instances[addr] = &state.Instance{Address: addr, Container: "winner", Index: os.Getpid(), Host: "node1", Name: "shop-winner"}
		err = f.Save(ctx, s)
		var conflict *state.SerialConflictError
		if errors.As(err, &conflict) {
			fmt.Println("conflict", conflict.Stored, conflict.Attempted)
			return exitConflict
		}
		if err != nil {
			fmt.Println("error", err)
			return exitError
		}
		fmt.Println("saved")
		return exitSaved
	}
	fmt.Println("unknown helper mode", mode)
	return exitError
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startHelper runs the test binary as a helper in mode on path. It is
// killed when the test ends.
func startHelper(t *testing.T, mode, path string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
}

// expect reads the helper's next line and fails unless it starts with
// prefix; it returns the rest of the line.
func (h *helper) expect(t *testing.T, prefix string) string {
	t.Helper()
	line, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper %d: %v (wanted %q)", h.cmd.Process.Pid, err, prefix)
	}
	line = strings.TrimSpace(line)
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		t.Fatalf("helper %d said %q; want %q", h.cmd.Process.Pid, line, prefix)
	}
	return strings.TrimSpace(rest)
}

// A holder killed with SIGKILL, which runs no cleanup, frees the lock.
func TestFileLockHolderKilled(t *testing.T) {
	f := newFile(t)
	h := startHelper(t, "lock", f.Path())
	id := h.expect(t, "locked")
	_, err := lockFor(t, f, 100*time.Millisecond)
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("Lock while a process holds it = %v; want *LockedError", err)
	}
	if locked.Holder.ID != id || locked.Holder.PID != h.cmd.Process.Pid {
		t.Errorf("holder = %+v; want ID %s, PID %d", locked.Holder, id, h.cmd.Process.Pid)
	}
	if err := syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
	if info := mustRead(t, f.Path()+".lock"); !strings.Contains(string(info), id) {
		t.Errorf("the killed holder's info is gone (%s); the test no longer covers a stale lock file", info)
	}
	got, err := lockFor(t, f, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	if err := f.Unlock(t.Context(), got); err != nil {
		t.Fatal(err)
	}
}

// Two processes read serial 1 and both save serial 2: one wins, the other
// gets a serial conflict, and the state holds the winner's change only.
func TestFileTwoProcessesSave(t *testing.T) {
	f := newFile(t)
	save(t, f, statetest.Sample(1, 1))
	a, b := startHelper(t, "save", f.Path()), startHelper(t, "save", f.Path())
	a.expect(t, "loaded 1")
	b.expect(t, "loaded 1")
	for _, h := range []*helper{a, b} {
		if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[int]*helper{}
	for _, h := range []*helper{a, b} {
		err := h.cmd.Wait()
		var exit *exec.ExitError
		code := 0
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		codes[code] = h
	}
	winner, loser := codes[exitSaved], codes[exitConflict]
	if winner == nil || loser == nil {
		t.Fatalf("exit codes %v; want one %d (saved) and one %d (conflict)", keys(codes), exitSaved, exitConflict)
	}
	s, err := f.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Serial != 2 || s.Instances[fmt.Sprintf("winner[%d]", winner.cmd.Process.Pid)] == nil ||
		s.Instances[fmt.Sprintf("winner[%d]", loser.cmd.Process.Pid)] != nil {
		t.Errorf("state after the race: serial %d, instances %v; want serial 2 with the winner's only", s.Serial, s.Addresses())
	}
}

func keys(m map[int]*helper) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

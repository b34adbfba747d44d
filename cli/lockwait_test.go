package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state"
)

// TestLockWaitIsAnnounced: a command given -lock-timeout that finds the
// lock held says it waits and for whom, then goes on once it is free;
// without -lock-timeout it fails at once, and says nothing of waiting.
func TestLockWaitIsAnnounced(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte("project = \"shop\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := state.NewFile(filepath.Join(dir, state.DefaultPath))
	st := sample("shop", 1, 2)
	if err := file.Save(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	holder := state.NewFile(filepath.Join(dir, state.DefaultPath))
	id, err := holder.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	addr := st.Addresses()[0]
	if _, stderr, code := runDockplan(t, dir, "state", "rm", addr); code != ExitError || strings.Contains(stderr, "Waiting") || !strings.Contains(stderr, id) {
		t.Fatalf("state rm without -lock-timeout exited %d; want a refusal naming %s at once:\n%s", code, id, stderr)
	}
	released := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		released <- holder.Unlock(t.Context(), id)
	}()
	out, stderr, code := runDockplan(t, dir, "state", "rm", "-lock-timeout", "1m", addr)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "Removed 1 instance") {
		t.Fatalf("state rm -lock-timeout 1m exited %d:\n%s%s", code, out, stderr)
	}
	if want := "for the state lock, which another dockplan holds: lock " + id + ": apply by "; !strings.Contains(stderr, "Waiting up to ") || !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say it waits (want %q):\n%s", want, stderr)
	}
	got, err := file.Load(t.Context())
	if err != nil || got.Instances[addr] != nil || len(got.Instances) != 1 {
		t.Errorf("after state rm: %v, %v; want %s removed", got.Addresses(), err, addr)
	}
}

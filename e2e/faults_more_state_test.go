package e2e

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/state"
)

// workerConfig is n independent workers: with -parallelism 1 an apply
// runs their creates one after another.
func workerConfig(n int) string {
	return fmt.Sprintf(`
container "worker" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = %d
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}
`, n)
}

// TestStateWriteFailure breaks the state's directory while an apply runs
// (a full file system; a directory that cannot be written to): the save
// after the step in flight fails, no further step starts, apply exits 1
// naming the error and where the last good state is, that state still
// parses and records only containers that exist, and the containers
// created after it are not lost: once the directory works again, the next
// plan adopts them and the apply converges.
func TestStateWriteFailure(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	for _, tt := range []struct {
		name string
		// prepare runs before anything is written; breakState breaks the
		// directory and returns its repair.
		prepare    func(t *testing.T, dir string)
		breakState func(t *testing.T, dir string) (repair func())
		why        string
	}{
		{name: "disk full", prepare: mountTinyTmpfs, breakState: fillDir, why: "no space left on device"},
		{name: "read-only directory", prepare: func(*testing.T, string) {}, breakState: makeImmutable, why: "operation not permitted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			counted := map[string]bool{"worker": true}
			p := labProject(t, l, "e2esw", workerConfig(1))
			tt.prepare(t, p.dir)
			p.write(workerConfig(1))
			p.converge()
			good := p.state()

			p.write(workerConfig(4))
			run := p.launch("apply", "-auto-approve", "-parallelism", "1")
			if !run.waitLine("Creating...", 1, time.Minute) {
				out, code := run.wait(time.Minute)
				t.Fatalf("the apply started no step (exit %d):\n%s", code, out)
			}
			repair := tt.breakState(t, p.dir)
			out, code := run.wait(3 * time.Minute)
			t.Logf("apply while the state's directory broke:\n%s", lastLines(out, 12))
			checkStoppedAtFailedSave(t, out, code, tt.why)
			unrecorded := checkLastGoodState(p, good)
			if t.Failed() {
				t.FailNow()
			}

			repair()
			checkPlanKnowsEverything(p, counted)
			out = p.converge()
			if !strings.Contains(out, fmt.Sprintf("%d adopted", unrecorded)) {
				t.Errorf("the next apply did not adopt the %d containers created after the last good save:\n%s", unrecorded, lastLines(out, 10))
			}
			p.checkStateIsReality(counted)
			if st := p.state(); len(st.Instances) != 4 {
				t.Errorf("state has %v, want 4 instances", st.Addresses())
			}
		})
	}
}

// checkStoppedAtFailedSave checks apply's report of a failed state save:
// exit 1, the cause (why), where the last good state is, and no step
// started after the first one failed.
func checkStoppedAtFailedSave(t *testing.T, out string, code int, why string) {
	t.Helper()
	for _, want := range []string{
		"saving the state failed, so no further step was started",
		why,
		"The last good state is dockplan.state.json (and dockplan.state.json.backup)",
		"the next plan adopts them",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q", want)
		}
	}
	if code != 1 {
		t.Errorf("apply exited %d, want 1", code)
	}
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if strings.Contains(line, ": Failed after") {
			for _, later := range lines[i+1:] {
				if strings.Contains(later, stepStarted) {
					t.Errorf("a step started after a save failed: %q", later)
				}
			}
			return
		}
	}
}

// checkLastGoodState checks that the state left by a failed save is good
// or newer, of the same lineage, and records only containers that exist;
// it returns how many labelled containers it does not record (at least
// one, or the test broke the directory too late).
func checkLastGoodState(p *project, good *state.State) int {
	t := p.t
	t.Helper()
	st := p.state()
	if st.Lineage != good.Lineage || st.Serial < good.Serial || st.Instances["worker[0]"] == nil {
		t.Errorf("the state after the failure is serial %d of %s with %v; want serial >= %d of %s with worker[0]",
			st.Serial, st.Lineage, st.Addresses(), good.Serial, good.Lineage)
	}
	recorded := map[string]bool{}
	for _, si := range st.Instances {
		recorded[si.ContainerID] = true
	}
	exists := map[string]bool{}
	unrecorded := 0
	for _, c := range p.labelledContainers() {
		exists[c.id] = true
		if !recorded[c.id] {
			unrecorded++
		}
	}
	for _, addr := range st.Addresses() {
		if !exists[st.Instances[addr].ContainerID] {
			t.Errorf("the state records %s, whose container does not exist", addr)
		}
	}
	if unrecorded == 0 {
		t.Errorf("no container was created after the last good save; the test broke the directory too late")
	}
	return unrecorded
}

// mountTinyTmpfs mounts a 256KiB tmpfs on dir until the test ends.
func mountTinyTmpfs(t *testing.T, dir string) {
	t.Helper()
	if out, err := osexec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s (the test needs root): %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := osexec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; unmounting lazily", dir, err, out)
			_ = osexec.Command("umount", "-l", dir).Run()
		}
	})
}

// fillDir writes a file into dir until its file system is full, and
// returns the file's removal.
func fillDir(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// makeImmutable sets the immutable attribute on dir (chattr +i), which
// stops even root from creating, renaming or removing files in it, until
// the returned repair or the end of the test.
func makeImmutable(t *testing.T, dir string) func() {
	t.Helper()
	undo := func() error {
		out, err := osexec.Command("chattr", "-i", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
		return nil
	}
	t.Cleanup(func() { _ = undo() })
	if out, err := osexec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i %s: %v: %s", dir, err, out)
	}
	return func() {
		if err := undo(); err != nil {
			t.Fatal(err)
		}
	}
}

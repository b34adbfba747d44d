package probetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockplan/dockplan/cli"
	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/probe"
)

// asCLI, set to 1 in a child's environment, makes the test binary run as
// dockplan: the CLI tests exec themselves, as testscript does, so every run
// is a real process with its own working directory, environment and exit
// code.
const asCLI = "DOCKPLAN_PROBETEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLI) == "1" {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}

// testLabel marks every container these tests start by hand, so a human
// can find leftovers of an interrupted run: docker ps -a --filter label=….
const testLabel = "dockplan-probetest=1"

// cliResult is what one dockplan run did.
type cliResult struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// runTimeout is a hang guard for one dockplan run, far above any probe
// timeout the tests use.
const runTimeout = 2 * time.Minute

// runDockplan runs dockplan with args in dir. The child gets this process's
// environment without DOCKER_HOST and DOCKER_CONTEXT, plus env.
func runDockplan(t testing.TB, dir string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "DOCKER_CONTEXT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, asCLI+"=1")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("dockplan %s did not return within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), runTimeout, res.stdout, res.stderr)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run dockplan: %v", err)
	}
	return res
}

// String shows a run for failure messages.
func (r cliResult) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout:\n%s\nstderr:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// snapshot decodes the output of `dockplan hosts -json`, checking first that
// it carries format_version.
func (r cliResult) snapshot(t *testing.T) *probe.Snapshot {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("hosts -json output does not parse: %v\n%s", err, r)
	}
	var version string
	if err := json.Unmarshal(raw["format_version"], &version); err != nil || version != probe.FormatVersion {
		t.Fatalf("format_version = %s, want %q", raw["format_version"], probe.FormatVersion)
	}
	var snap probe.Snapshot
	if err := json.Unmarshal([]byte(r.stdout), &snap); err != nil {
		t.Fatalf("hosts -json output does not decode into a Snapshot: %v\n%s", err, r)
	}
	return &snap
}

// writeConfig writes a configuration of project with the given host blocks
// and one container of the test image into a new directory, and returns it.
func writeConfig(t *testing.T, project string, hostBlocks ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf("project = %q\n\n%s\ncontainer \"web\" {\n  image = %q\n}\n",
		project, strings.Join(hostBlocks, "\n"), labenv.TestImage)
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// uniqueName returns prefix and a random suffix: a project or container
// name no other test run uses.
func uniqueName(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// dockerCLI runs the docker CLI against endpoint and returns its output.
func dockerCLI(ctx context.Context, endpoint string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", endpoint}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONTEXT=")
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("docker -H %s %s: %w: %s", endpoint, strings.Join(args, " "), err, text)
	}
	return text, nil
}

// seq numbers the containers of this test binary.
var seq atomic.Int64

// startContainer runs the test image on h with extra docker run (or, with
// create, docker create) flags, removes it when the test ends (over the unix
// socket, which answers even while h is partitioned), and returns its name.
// An empty name picks a unique one.
func startContainer(t *testing.T, h labenv.Host, name string, create bool, extra ...string) string {
	t.Helper()
	if name == "" {
		name = fmt.Sprintf("probetest-%d-%s", seq.Add(1), uniqueName(t, "c"))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dockerCLI(ctx, h.Socket, "rm", "-f", name); err != nil {
			t.Errorf("clean up container %s on %s: %v", name, h.Name, err)
		}
	})
	verb := []string{"run", "-d"}
	if create {
		verb = []string{"create"}
	}
	args := append(append(verb, "--name", name, "--label", testLabel), extra...)
	if _, err := dockerCLI(t.Context(), h.Socket, append(args, labenv.TestImage)...); err != nil {
		t.Fatal(err)
	}
	return name
}

// requireTools fails the test under CI=true, and skips it otherwise, when a
// program it needs is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("this test needs %s (`bash lab/install-deps.sh` installs it): %v", tool, err)
			if labenv.InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// wantContains fails the test for each want missing from text.
func wantContains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

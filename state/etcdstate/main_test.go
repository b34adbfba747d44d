package etcdstate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state"
)

// The test binary doubles as a helper process: with helperEnv set to a
// mode it runs that helper against the cluster and prefix named by the
// other variables instead of the tests. None is named ETCD_*, which the
// etcd members would read as flags.
const (
	helperEnv          = "DOCKPLAN_ETCDSTATE_HELPER"
	helperEndpointsEnv = "DOCKPLAN_ETCDSTATE_HELPER_ENDPOINTS"
	helperPrefixEnv    = "DOCKPLAN_ETCDSTATE_HELPER_PREFIX"
	helperTTLEnv       = "DOCKPLAN_ETCDSTATE_HELPER_TTL"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	ttl, err := time.ParseDuration(os.Getenv(helperTTLEnv))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	b, err := New(Options{Endpoints: strings.Split(os.Getenv(helperEndpointsEnv), ","), Prefix: os.Getenv(helperPrefixEnv), LockTTL: ttl})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch mode {
	case "lock":
		// Take the lock, say so, and hold it until killed (or until the
		// parent goes away and stdin closes).
		id, err := b.Lock(ctx, state.NewLockInfo("apply"))
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("locked", id)
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	}
	fmt.Println("unknown helper mode", mode)
	return 1
}

// helper is a running helper process.
type helper struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startHelper runs the test binary as a helper in mode. It is killed when
// the test ends.
func startHelper(t *testing.T, mode string, endpoints []string, prefix string, ttl time.Duration) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEndpointsEnv+"="+strings.Join(endpoints, ","),
		helperPrefixEnv+"="+prefix, helperTTLEnv+"="+ttl.String())
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil {
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
	return &helper{cmd: cmd, out: bufio.NewReader(stdout)}
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

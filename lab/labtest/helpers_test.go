package labtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// testLabel marks every container these tests make.
const testLabel = "dockplan-lab.test=labtest"

// seq makes container names unique within this test binary.
var seq atomic.Int64

// dockerCLI runs the docker CLI against endpoint and returns its output.
func dockerCLI(ctx context.Context, endpoint string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"-H", endpoint}, args...)...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("docker -H %s %s: %w: %s", endpoint, strings.Join(args, " "), err, text)
	}
	return text, nil
}

// mustDocker is dockerCLI that fails the test on error.
func mustDocker(t *testing.T, endpoint string, args ...string) string {
	t.Helper()
	out, err := dockerCLI(t.Context(), endpoint, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// runTestapp starts the test image on h with port 8080 published on a port
// Docker picks, removes it when the test ends (over the unix socket, which
// works even while h is partitioned), and returns its name and host port.
func runTestapp(t *testing.T, lab *labenv.Lab, h labenv.Host, extra ...string) (name, port string) {
	t.Helper()
	name = fmt.Sprintf("labtest-%s-%d", strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-")), seq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dockerCLI(ctx, h.Socket, "rm", "-f", name); err != nil {
			t.Errorf("clean up container %s on %s: %v", name, h.Name, err)
		}
	})
	args := append([]string{"run", "-d", "--name", name, "--label", testLabel, "-p", "8080"}, extra...)
	mustDocker(t, h.Socket, append(args, lab.Image)...)
	return name, hostPort(t, h, name)
}

// hostPort returns the host port published for the container's 8080. It
// is looked up afresh after a restart: Docker picks a new one then.
func hostPort(t *testing.T, h labenv.Host, name string) string {
	t.Helper()
	mapping := mustDocker(t, h.Socket, "port", name, "8080/tcp")
	first := strings.SplitN(mapping, "\n", 2)[0]
	return first[strings.LastIndex(first, ":")+1:]
}

// eventually calls check until it succeeds or timeout passes, then fails
// the test with check's last error.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGet GETs url and returns the status and body.
func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body), err
}

// healthy checks that a testapp answers /healthz at addr.
func healthy(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		code, body, err := httpGet(ctx, "http://"+addr+"/healthz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/healthz answered %d %s", code, body)
		}
		return nil
	}
}

// dialOK asks the testapp at from to dial target and checks it succeeded.
func dialOK(from, target string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		code, body, err := httpGet(ctx, "http://"+from+"/dial?timeout=1s&addr="+target)
		if err != nil {
			return err
		}
		var res struct {
			OK    bool
			Error string
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			return fmt.Errorf("decode /dial answer %q: %w", body, err)
		}
		if code != http.StatusOK || !res.OK {
			return fmt.Errorf("/dial from %s to %s: %d %s", from, target, code, res.Error)
		}
		return nil
	}
}

// containerState returns a container's State.Status ("running", "exited").
func containerState(ctx context.Context, h labenv.Host, name string) (string, error) {
	return dockerCLI(ctx, h.Socket, "inspect", "-f", "{{.State.Status}}", name)
}

// wantState checks that a container reaches state.
func wantState(h labenv.Host, name, state string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		got, err := containerState(ctx, h, name)
		if err != nil {
			return err
		}
		if got != state {
			return fmt.Errorf("container %s on %s is %s, want %s", name, h.Name, got, state)
		}
		return nil
	}
}

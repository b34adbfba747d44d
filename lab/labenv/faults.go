package labenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds a dockerd start when the caller's context has no
// deadline. Three hosts usually answer within 2–3 s.
const startTimeout = 60 * time.Second

// daemonEnv is the environment a lab dockerd runs with: nothing inherited,
// so a caller's DOCKER_* variables cannot change it.
var daemonEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}

// partitionRules are the raw-table rules, inside the host's namespace, that
// drop everything crossing its link. Dropping (not rejecting) makes the host
// time out as a cut-off machine does; the raw table is one dockerd 20.10
// never touches.
var partitionRules = [][]string{{"PREROUTING", "-i"}, {"OUTPUT", "-o"}}

// Partition cuts the host named name off the lab network.
func (l *Lab) Partition(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	return h.Partition(ctx)
}

// Heal undoes Partition for the host named name.
func (l *Lab) Heal(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	return h.Heal(ctx)
}

// Kill kills the dockerd of the host named name; with power it also kills
// its containerd, shims, containers and everything else in its namespace,
// as a power loss would.
func (l *Lab) Kill(ctx context.Context, name string, power bool) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if power {
		return h.KillAll(ctx)
	}
	return h.KillDaemon(ctx)
}

// Revive starts the dockerd of the host named name again, if it is not
// running, and waits until it answers.
func (l *Lab) Revive(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	return h.Start(ctx)
}

// Partition drops all traffic on the host's lab link. The unix socket still
// answers; its TCP endpoint and published ports time out. Idempotent.
func (h Host) Partition(ctx context.Context) error {
	for _, r := range partitionRules {
		on, err := h.ruleExists(ctx, r)
		if err != nil {
			return err
		}
		if !on {
			if _, err := h.iptables(ctx, "-I", r[0], r[1], h.Link, "-j", "DROP"); err != nil {
				return fmt.Errorf("partition %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// Heal removes the host's partition rules. Idempotent.
func (h Host) Heal(ctx context.Context) error {
	for _, r := range partitionRules {
		for {
			on, err := h.ruleExists(ctx, r)
			if err != nil {
				return err
			}
			if !on {
				break
			}
			if _, err := h.iptables(ctx, "-D", r[0], r[1], h.Link, "-j", "DROP"); err != nil {
				return fmt.Errorf("heal %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// Partitioned reports whether any partition rule is in place.
func (h Host) Partitioned(ctx context.Context) (bool, error) {
	for _, r := range partitionRules {
		on, err := h.ruleExists(ctx, r)
		if on || err != nil {
			return on, err
		}
	}
	return false, nil
}

// ruleExists runs `iptables -C`: exit status 1 means the rule is absent.
func (h Host) ruleExists(ctx context.Context, r []string) (bool, error) {
	code, err := h.iptables(ctx, "-C", r[0], r[1], h.Link, "-j", "DROP")
	if code == 1 {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return true, nil
}

// iptables runs iptables on the raw table inside the host's namespace and
// returns its exit status.
func (h Host) iptables(ctx context.Context, args ...string) (int, error) {
	argv := append([]string{"--net=/run/netns/" + h.Netns, "--", "iptables", "-w", "10", "-t", "raw"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	if err != nil {
		return -1, fmt.Errorf("iptables %s: %w", strings.Join(args, " "), err)
	}
	return 0, nil
}

// KillDaemon sends SIGKILL to the host's dockerd only, as a crash would, and
// waits until it is gone. Its shims and containers keep running.
func (h Host) KillDaemon(ctx context.Context) error {
	pid := h.DaemonPID()
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s dockerd (pid %d): %w", h.Name, pid, err)
	}
	if err := WaitGone(ctx, []int{pid}); err != nil {
		return fmt.Errorf("kill %s dockerd: %w", h.Name, err)
	}
	return nil
}

// Start starts the host's dockerd with its recorded command unless it is
// running, and waits until its unix socket answers. The daemon runs in a
// session of its own and outlives the caller.
func (h Host) Start(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	if h.DaemonPID() != 0 {
		return h.waitReady(ctx, nil)
	}
	if len(h.Command) == 0 {
		return fmt.Errorf("host %s: the lab state has no dockerd command: run `go run ./lab down` and `%s`", h.Name, UpCommand)
	}
	_ = os.Remove(h.PIDFile) // stale: its process is gone
	// dockerd reuses the containerd named in this file while kill(pid, 0)
	// succeeds, which it does for a zombie. This machine's init reaps
	// orphans only every few seconds, so after a kill the file can name a
	// zombie and dockerd then waits for it in vain ("timeout waiting for
	// containerd to start", seen with Docker 20.10).
	ctrdPIDFile := filepath.Join(h.ExecRoot, "containerd", "containerd.pid")
	if ReadPIDFile(ctrdPIDFile, "containerd") == 0 {
		_ = os.Remove(ctrdPIDFile)
	}
	logFile, err := os.OpenFile(h.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", h.Name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(h.Command[0], h.Command[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = daemonEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s dockerd: %w", h.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reap it if it dies while this process lives
		close(exited)
	}()
	return h.waitReady(ctx, exited)
}

// waitReady polls the host's unix socket until it answers, the daemon
// exits (exited is closed) or ctx ends.
func (h Host) waitReady(ctx context.Context, exited <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		lastErr = h.Ping(pingCtx, true)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s dockerd exited at start; end of %s:\n%s", h.Name, h.LogFile, tail(h.LogFile, 15))
		case <-ctx.Done():
			return fmt.Errorf("%s dockerd did not answer (%v): %w; see %s", h.Name, lastErr, ctx.Err(), h.LogFile)
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

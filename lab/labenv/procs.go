package labenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// shimSocketDir is where containerd 1.6 shims put their sockets, whatever
// the daemon's own state folder; a killed shim leaves its socket behind.
const shimSocketDir = "/run/containerd/s/"

// Processes returns, sorted, the PIDs of every process that belongs to the
// host: those in its network namespace (dockerd, its containerd, shims,
// docker-proxy, anything a test started there) and those below its cgroup
// parent (the containers' processes).
func (h Host) Processes() ([]int, error) {
	nsDev, nsIno, err := fileID(filepath.Join("/run/netns", h.Netns))
	if errors.Is(err, os.ErrNotExist) {
		nsIno = 0 // namespace gone: only the cgroup can still hold processes
	} else if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !processAlive(pid) {
			continue
		}
		if nsIno != 0 {
			if dev, ino, err := fileID(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && dev == nsDev && ino == nsIno {
				pids = append(pids, pid)
				continue
			}
		}
		if inCgroup(pid, h.CgroupParent) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// fileID returns the device and inode of path (following symlinks).
func fileID(path string) (dev, ino uint64, err error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return uint64(st.Dev), st.Ino, nil
}

// inCgroup reports whether pid is in parent or below it in any hierarchy.
func inCgroup(pid int, parent string) bool {
	if parent == "" || parent == "/" {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[2] == parent || strings.HasPrefix(parts[2], parent+"/")) {
			return true
		}
	}
	return false
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	state := data[i+2]
	return state != 'Z' && state != 'X'
}

// cmdlineHas reports whether pid's command line has an argument containing s.
func cmdlineHas(pid int, s string) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(data, []byte{0}) {
		if bytes.Contains(arg, []byte(s)) {
			return true
		}
	}
	return false
}

// ReadPIDFile returns the live process in pidFile whose command line names
// marker (so a reused PID is never mistaken for ours), or 0.
func ReadPIDFile(pidFile, marker string) int {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 || !processAlive(pid) || !cmdlineHas(pid, marker) {
		return 0
	}
	return pid
}

// DaemonPID returns the PID of the host's running dockerd, or 0.
func (h Host) DaemonPID() int {
	return ReadPIDFile(h.PIDFile, h.PIDFile)
}

// KillAll sends SIGKILL to every process of the host (see Processes) until
// none is left, then removes the sockets its shims left behind.
func (h Host) KillAll(ctx context.Context) error {
	sockets := h.shimSockets()
	for {
		pids, err := h.Processes()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
		}
		if err := WaitGone(ctx, pids); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	for _, s := range sockets {
		_ = os.Remove(s) // best effort: a file someone else removed is fine
	}
	return nil
}

// shimSockets lists the shim sockets bound in the host's network namespace.
func (h Host) shimSockets() []string {
	pid := h.DaemonPID()
	if pid == 0 {
		pids, err := h.Processes()
		if err != nil || len(pids) == 0 {
			return nil
		}
		pid = pids[0]
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/unix", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	var paths []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if n := len(fields); n >= 8 && strings.HasPrefix(fields[n-1], shimSocketDir) {
			paths = append(paths, fields[n-1])
		}
	}
	return paths
}

// WaitGone waits until none of pids is alive, or ctx ends.
func WaitGone(ctx context.Context, pids []int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var alive []int
		for _, pid := range pids {
			if processAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v still alive: %w", alive, ctx.Err())
		case <-tick.C:
		}
	}
}

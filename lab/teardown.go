package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// down removes everything the lab made: processes, mounts, cgroups,
// namespaces, links, folders. It works from the fixed layout, so it also
// cleans up after an interrupted up, and is a no-op when nothing is there.
func down(ctx context.Context) error {
	tools, _ := findTools() // only used to render commands; none run here
	var wg sync.WaitGroup
	errs := make([]error, maxHosts+1)
	for _, i := range hostIndexesInUse() {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = teardownHost(ctx, hostLayout(i, tools))
		}(i)
	}
	wg.Wait()
	errs = append(errs,
		stopRegistry(ctx, newLab(0, tools).Registry),
		teardownSwitch(ctx),
		unmountAll(stateDir),
		unmountAll(dataDir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, dir := range []string{stateDir, dataDir} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	return nil
}

// teardownHost kills every process of host h, then removes its mounts,
// cgroups, namespace and folders.
func teardownHost(ctx context.Context, h labenv.Host) error {
	killCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := h.KillAll(killCtx); err != nil {
		return fmt.Errorf("tear down %s: %w", h.Name, err)
	}
	errs := []error{
		unmountAll(h.Dir),
		unmountAll(h.DataRoot),
		removeCgroups(ctx, h.CgroupParent),
		deleteNetns(ctx, h.Netns),
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down %s: %w", h.Name, err)
	}
	for _, dir := range []string{h.Dir, h.DataRoot} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("tear down %s: %w", h.Name, err)
		}
	}
	return nil
}

// unmountAll unmounts every mount at or below dir, deepest first, until
// none is left (mounts can be stacked).
func unmountAll(dir string) error {
	for round := 0; round < 10; round++ {
		mps, err := mountPoints(dir)
		if err != nil || len(mps) == 0 {
			return err
		}
		sort.SliceStable(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
		for _, mp := range mps {
			if err := unmount(mp); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("mounts below %s keep coming back", dir)
}

// unmount unmounts mp, lazily if it is busy. A mount that is already gone
// is fine.
func unmount(mp string) error {
	err := syscall.Unmount(mp, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("unmount %s: %w", mp, err)
	}
	return nil
}

// cgroupDirs returns the folders of cgroup parent in every hierarchy:
// /sys/fs/cgroup/<controller>/<parent> (v1) and /sys/fs/cgroup/<parent> (v2).
func cgroupDirs(parent string) []string {
	name := strings.TrimPrefix(parent, "/")
	if name == "" {
		return nil
	}
	var dirs []string
	if _, err := os.Stat(filepath.Join(cgroupRoot, name)); err == nil {
		dirs = append(dirs, filepath.Join(cgroupRoot, name))
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return dirs
	}
	for _, e := range entries {
		dir := filepath.Join(cgroupRoot, e.Name(), name)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// removeCgroups removes the cgroup parent's folders, children first. A
// cgroup whose last process just died can be busy for a moment: retry.
func removeCgroups(ctx context.Context, parent string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var busy []string
		for _, dir := range cgroupDirs(parent) {
			busy = append(busy, removeCgroupTree(dir)...)
		}
		if len(busy) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("cgroups still busy: %s", strings.Join(busy, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroupTree rmdirs dir and its sub-cgroups, deepest first, and
// returns those it could not remove.
func removeCgroupTree(dir string) []string {
	var failed []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			failed = append(failed, removeCgroupTree(filepath.Join(dir, e.Name()))...)
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		failed = append(failed, dir)
	}
	return failed
}

// leftovers describes anything of the lab that is still there after down.
func leftovers() []string {
	var out []string
	for _, i := range hostIndexesInUse() {
		out = append(out, fmt.Sprintf("host%d namespace or folder", i))
	}
	if netnsExists(switchNetns) {
		out = append(out, "namespace "+switchNetns)
	}
	for _, dir := range []string{stateDir, dataDir} {
		if mps, _ := mountPoints(dir); len(mps) > 0 {
			out = append(out, fmt.Sprintf("%d mounts below %s", len(mps), dir))
		}
		if _, err := os.Stat(dir); err == nil {
			out = append(out, "folder "+dir)
		}
	}
	for i := 1; i <= maxHosts; i++ {
		if dirs := cgroupDirs(fmt.Sprintf("/lab-host%d", i)); len(dirs) > 0 {
			out = append(out, fmt.Sprintf("%d cgroups of host%d", len(dirs), i))
		}
	}
	if pids := labProcesses(); len(pids) > 0 {
		out = append(out, fmt.Sprintf("processes %v", pids))
	}
	return out
}

// labProcesses lists processes whose command line names a lab folder.
func labProcesses() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && (bytes.Contains(cmdline, []byte(stateDir)) || bytes.Contains(cmdline, []byte(dataDir))) {
			pids = append(pids, pid)
		}
	}
	return pids
}

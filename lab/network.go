package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dockplan/dockplan/lab/labenv"
)

// netnsDir is where `ip netns` keeps its namespace files.
const netnsDir = "/run/netns"

// netnsMountMarker records that the lab's first `ip netns add` made
// /run/netns a mount point, so down removes that mount again.
var netnsMountMarker = filepath.Join(stateDir, "netns-mount-created")

// netnsDirCreated in the marker says /run/netns did not exist before.
const netnsDirCreated = "created-dir"

// runCmd runs a program and returns its trimmed output; the error carries
// the command line and what it printed.
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, text)
	}
	return text, nil
}

// ipIn runs `ip` inside netns ("" for the root namespace).
func ipIn(ctx context.Context, netns string, args ...string) error {
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	_, err := runCmd(ctx, "ip", args...)
	return err
}

// linkExists reports whether dev exists in netns ("" for the root one).
func linkExists(ctx context.Context, netns, dev string) bool {
	return ipIn(ctx, netns, "link", "show", "dev", dev) == nil
}

// netnsExists reports whether the named namespace file exists.
func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, name))
	return err == nil
}

// ensureNetns creates the named network namespace if it is missing.
func ensureNetns(ctx context.Context, name string) error {
	if netnsExists(name) {
		return nil
	}
	if !isMountPoint(netnsDir) {
		var created []byte
		if _, err := os.Stat(netnsDir); errors.Is(err, os.ErrNotExist) {
			created = []byte(netnsDirCreated)
		}
		if err := os.WriteFile(netnsMountMarker, created, 0o644); err != nil {
			return fmt.Errorf("record netns mount: %w", err)
		}
	}
	if err := ipIn(ctx, "", "netns", "add", name); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// setupSwitch creates the switch namespace with its bridge and the veth that
// joins it to the root namespace. The bridge lives in a namespace of its own
// because in the root namespace the default dockerd's FORWARD policy (DROP)
// would drop host-to-host frames.
func setupSwitch(ctx context.Context) error {
	if err := ensureNetns(ctx, switchNetns); err != nil {
		return err
	}
	steps := [][]string{}
	if !linkExists(ctx, switchNetns, bridgeName) {
		steps = append(steps, []string{switchNetns, "link", "add", bridgeName, "type", "bridge"})
	}
	steps = append(steps,
		[]string{switchNetns, "link", "set", bridgeName, "up"},
		[]string{switchNetns, "link", "set", "lo", "up"})
	if !linkExists(ctx, "", rootLink) {
		steps = append(steps, []string{"", "link", "add", rootLink, "type", "veth", "peer", "name", uplinkName, "netns", switchNetns})
	}
	steps = append(steps,
		[]string{switchNetns, "link", "set", uplinkName, "master", bridgeName, "up"},
		[]string{"", "link", "set", rootLink, "address", labMAC(1)},
		[]string{"", "addr", "replace", fmt.Sprintf("%s/%d", gatewayIP, subnetBits), "dev", rootLink},
		[]string{"", "link", "set", rootLink, "up"})
	for _, s := range steps {
		if err := ipIn(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("set up lab switch: %w", err)
		}
	}
	return nil
}

// setupHostNet creates host h's namespace and its veth to the switch. The
// host gets no default route: it reaches only the lab network.
func setupHostNet(ctx context.Context, h labenv.Host) error {
	if err := ensureNetns(ctx, h.Netns); err != nil {
		return err
	}
	port := switchPort(h)
	var steps [][]string
	if !linkExists(ctx, h.Netns, h.Link) {
		if linkExists(ctx, switchNetns, port) {
			steps = append(steps, []string{switchNetns, "link", "del", port})
		}
		steps = append(steps, []string{switchNetns, "link", "add", port, "type", "veth", "peer", "name", h.Link, "netns", h.Netns})
	}
	steps = append(steps,
		[]string{switchNetns, "link", "set", port, "master", bridgeName, "up"},
		[]string{h.Netns, "link", "set", h.Link, "address", labMAC(10 + h.Index)},
		[]string{h.Netns, "addr", "replace", fmt.Sprintf("%s/%d", h.Address, subnetBits), "dev", h.Link},
		[]string{h.Netns, "link", "set", h.Link, "up"},
		[]string{h.Netns, "link", "set", "lo", "up"})
	for _, s := range steps {
		if err := ipIn(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("set up network of %s: %w", h.Name, err)
		}
	}
	return nil
}

// labMAC is the fixed MAC address of the lab address ending in lastOctet.
// Fixed addresses keep neighbour caches right when a host is re-created
// (after `up 2` then `up 3`); a fresh random MAC left the root namespace
// talking to the old one for seconds.
func labMAC(lastOctet int) string { return fmt.Sprintf("02:d9:0a:d5:00:%02x", lastOctet) }

// switchPort is the name of host h's veth end on the bridge.
func switchPort(h labenv.Host) string { return fmt.Sprintf("h%d", h.Index) }

// deleteNetns removes a namespace file; deleting a host's namespace also
// destroys its veth pair.
func deleteNetns(ctx context.Context, name string) error {
	if !netnsExists(name) {
		return nil
	}
	if err := ipIn(ctx, "", "netns", "del", name); err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// teardownSwitch removes the switch namespace and the root namespace's veth.
func teardownSwitch(ctx context.Context) error {
	var errs []error
	errs = append(errs, deleteNetns(ctx, switchNetns))
	if linkExists(ctx, "", rootLink) {
		errs = append(errs, ipIn(ctx, "", "link", "del", rootLink))
	}
	if _, err := os.Stat(netnsMountMarker); err == nil {
		errs = append(errs, releaseNetnsMount())
	}
	return errors.Join(errs...)
}

// releaseNetnsMount undoes the /run/netns mount the lab's first `ip netns
// add` made, if no namespace is left in it.
func releaseNetnsMount() error {
	entries, err := os.ReadDir(netnsDir)
	if err != nil || len(entries) > 0 {
		return nil // someone else's namespaces live there: keep it
	}
	for isMountPoint(netnsDir) {
		if err := unmount(netnsDir); err != nil {
			return err
		}
	}
	if marker, _ := os.ReadFile(netnsMountMarker); string(marker) == netnsDirCreated {
		_ = os.Remove(netnsDir) // only succeeds while it is empty
	}
	return nil
}

// hostIndexesInUse lists the host numbers that have a lab namespace or a
// state folder, so down finds hosts an interrupted up left behind.
func hostIndexesInUse() []int {
	seen := map[int]bool{}
	if entries, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range entries {
			var i int
			if _, err := fmt.Sscanf(e.Name(), hostNetns+"%d", &i); err == nil && i > 0 && i <= maxHosts {
				seen[i] = true
			}
		}
	}
	for i := 1; i <= maxHosts; i++ {
		if _, err := os.Stat(filepath.Join(stateDir, fmt.Sprintf("host%d", i))); err == nil {
			seen[i] = true
		}
	}
	var out []int
	for i := 1; i <= maxHosts; i++ {
		if seen[i] {
			out = append(out, i)
		}
	}
	return out
}

// mountPoints returns the mount points at or below dir, deepest last in
// mount order (so unmounting goes in reverse).
func mountPoints(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// isMountPoint reports whether dir itself is a mount point.
func isMountPoint(dir string) bool {
	mps, err := mountPoints(dir)
	if err != nil {
		return false
	}
	for _, mp := range mps {
		if mp == dir {
			return true
		}
	}
	return false
}

// unescapeMount decodes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

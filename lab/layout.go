package main

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/dockplan/dockplan/lab/labenv"
)

// The lab's fixed layout. Every name is distinctive so that down can find
// what an interrupted up left behind without a state file.
const (
	stateDir    = "/run/dockplan-lab"
	dataDir     = "/var/lib/dockplan-lab"
	lockPath    = "/run/lock/dockplan-lab.lock"
	subnetBase  = "10.213.0."
	subnetBits  = 24
	gatewayIP   = subnetBase + "1"
	switchNetns = "dplab-switch"
	bridgeName  = "br0"
	rootLink    = "dplab0"
	uplinkName  = "uplink"
	hostNetns   = "dplab-host"
	hostLink    = "eth0"
	dockerPort  = 2375
	registryAt  = gatewayIP + ":5000"
	maxHosts    = 20
	// testRepo is the test image's repository in the lab registry.
	testRepo = registryAt + "/dockplan-testapp:dev"
)

// newLab returns the layout of a lab with n hosts; tools maps a program
// name to its absolute path.
func newLab(n int, tools map[string]string) *labenv.Lab {
	lab := &labenv.Lab{
		Version:     labenv.StateVersion,
		StateDir:    stateDir,
		DataDir:     dataDir,
		Subnet:      fmt.Sprintf("%s0/%d", subnetBase, subnetBits),
		Gateway:     gatewayIP,
		SwitchNetns: switchNetns,
		RootLink:    rootLink,
		Registry: labenv.Registry{
			Address: registryAt,
			Config:  filepath.Join(stateDir, "registry", "config.yml"),
			PIDFile: filepath.Join(stateDir, "registry", "registry.pid"),
			LogFile: filepath.Join(stateDir, "registry", "registry.log"),
		},
		Image:         labenv.TestImage,
		RegistryImage: testRepo,
	}
	for i := 1; i <= n; i++ {
		lab.Hosts = append(lab.Hosts, hostLayout(i, tools))
	}
	return lab
}

// hostLayout returns host i's names, addresses, paths and dockerd command.
func hostLayout(i int, tools map[string]string) labenv.Host {
	name := fmt.Sprintf("host%d", i)
	dir := filepath.Join(stateDir, name)
	h := labenv.Host{
		Name:         name,
		Index:        i,
		Hostname:     "lab-" + name,
		Address:      fmt.Sprintf("%s%d", subnetBase, 10+i),
		Socket:       "unix://" + filepath.Join(dir, "docker.sock"),
		Netns:        fmt.Sprintf("%s%d", hostNetns, i),
		Link:         hostLink,
		BridgeIP:     fmt.Sprintf("172.30.%d.1/24", i),
		CgroupParent: "/lab-" + name,
		Dir:          dir,
		DataRoot:     filepath.Join(dataDir, name),
		ExecRoot:     filepath.Join(dir, "exec"),
		PIDFile:      filepath.Join(dir, "docker.pid"),
		LogFile:      filepath.Join(dir, "dockerd.log"),
	}
	h.TCPAddress = fmt.Sprintf("tcp://%s:%d", h.Address, dockerPort)
	h.Command = dockerdCommand(h, tools)
	return h
}

// daemonConfig is the host's --config-file: empty, so that dockerd never
// reads the machine's /etc/docker/daemon.json.
func daemonConfig(h labenv.Host) string { return filepath.Join(h.Dir, "daemon.json") }

// dockerdCommand is the argv that starts host h's dockerd: nsenter joins the
// host's network namespace (`ip netns exec` would remount /sys and dockerd
// then fails with "Devices cgroup isn't mounted"), unshare gives it a UTS
// namespace whose host name the shell sets, and the shell execs dockerd, so
// the started PID is dockerd's. --tls=false avoids dockerd 20.10's 15 s
// pause when it listens on plain TCP.
func dockerdCommand(h labenv.Host, tools map[string]string) []string {
	return []string{
		tool(tools, "nsenter"), "--net=/run/netns/" + h.Netns, "--",
		tool(tools, "unshare"), "--uts", "--",
		tool(tools, "sh"), "-c", `echo "$0" > /proc/sys/kernel/hostname && exec "$@"`, h.Hostname,
		tool(tools, "dockerd"),
		"--data-root", h.DataRoot,
		"--exec-root", h.ExecRoot,
		"--pidfile", h.PIDFile,
		"--config-file", daemonConfig(h),
		"--host", h.Socket,
		"--host", h.TCPAddress,
		"--tls=false",
		"--bip", h.BridgeIP,
		"--cgroup-parent", h.CgroupParent,
		"--insecure-registry", registryAt,
		"--label", "dockplan-lab.host=" + h.Name,
	}
}

// requiredTools are the programs the lab runs.
var requiredTools = []string{"dockerd", "docker-registry", "nsenter", "unshare", "ip", "iptables", "sh"}

// findTools resolves every required program on PATH; a missing one names
// the install step.
func findTools() (map[string]string, error) {
	tools := map[string]string{}
	for _, name := range requiredTools {
		path, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("%s not found: run `bash lab/install-deps.sh` as root", name)
		}
		tools[name] = path
	}
	return tools, nil
}

// tool returns the resolved path of name, or name itself.
func tool(tools map[string]string, name string) string {
	if p, ok := tools[name]; ok {
		return p
	}
	return name
}

package labenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const (
	// DefaultStateFile is where `go run ./lab up` writes the lab's state.
	DefaultStateFile = "/run/dockplan-lab/state.json"
	// StateFileEnv names the environment variable that overrides
	// DefaultStateFile.
	StateFileEnv = "DOCKPLAN_LAB_STATE"
	// StateVersion is the format version of the state file this package reads.
	StateVersion = 1
	// TestImage is the local name of the project's test image.
	TestImage = "dockplan-testapp:dev"
	// UpCommand is what an operator runs to bring the lab up.
	UpCommand = "go run ./lab up 3"
)

// ErrNotUp reports that the lab's state file does not exist.
var ErrNotUp = errors.New("the dockplan lab is not up")

// Lab is the state of a running lab, as written by `go run ./lab up`.
type Lab struct {
	// Version is the state file format version (StateVersion).
	Version int `json:"version"`
	// StateDir holds sockets, pid files, logs and this state file.
	StateDir string `json:"state_dir"`
	// DataDir holds the hosts' data roots and the registry's storage.
	DataDir string `json:"data_dir"`
	// Subnet is the lab network, for example "10.213.0.0/24".
	Subnet string `json:"subnet"`
	// Gateway is the root namespace's address on the lab network.
	Gateway string `json:"gateway"`
	// SwitchNetns is the network namespace holding the bridge.
	SwitchNetns string `json:"switch_netns"`
	// RootLink is the root namespace's end of the veth to the switch.
	RootLink string `json:"root_link"`
	// Registry is the lab's image registry.
	Registry Registry `json:"registry"`
	// Image is the test image's local name on every host.
	Image string `json:"image"`
	// RegistryImage is the test image's name in the lab registry.
	RegistryImage string `json:"registry_image"`
	// Hosts are the lab hosts, ordered by Index.
	Hosts []Host `json:"hosts"`

	// stateFile is the file this Lab was read from.
	stateFile string
}

// Registry describes the lab registry (Debian's docker-registry).
type Registry struct {
	// Address is host:port, reachable from lab hosts and the root namespace.
	Address string `json:"address"`
	// Config is the registry's configuration file.
	Config string `json:"config"`
	// PIDFile holds the registry's process ID.
	PIDFile string `json:"pid_file"`
	// LogFile receives the registry's output.
	LogFile string `json:"log_file"`
}

// Host is one lab host: a dockerd in its own network namespace.
type Host struct {
	// Name is the lab's name for the host ("host1"); use it in HCL.
	Name string `json:"name"`
	// Index is the host's number, from 1.
	Index int `json:"index"`
	// Hostname is what `docker info` reports as Name ("lab-host1").
	Hostname string `json:"hostname"`
	// Address is the host's IP address on the lab network.
	Address string `json:"address"`
	// TCPAddress is the plain TCP endpoint ("tcp://10.213.0.11:2375").
	TCPAddress string `json:"tcp_address"`
	// Socket is the unix socket endpoint ("unix:///run/.../docker.sock").
	// It still answers while the host is partitioned.
	Socket string `json:"socket"`
	// Netns is the host's network namespace under /run/netns.
	Netns string `json:"netns"`
	// Link is the host's interface inside Netns, joined to the switch.
	Link string `json:"link"`
	// BridgeIP is dockerd's --bip.
	BridgeIP string `json:"bridge_ip"`
	// CgroupParent is dockerd's --cgroup-parent; all its containers live below.
	CgroupParent string `json:"cgroup_parent"`
	// Dir is the host's folder in the state dir.
	Dir string `json:"dir"`
	// DataRoot is dockerd's --data-root.
	DataRoot string `json:"data_root"`
	// ExecRoot is dockerd's --exec-root.
	ExecRoot string `json:"exec_root"`
	// PIDFile is dockerd's --pidfile.
	PIDFile string `json:"pid_file"`
	// LogFile receives dockerd's output.
	LogFile string `json:"log_file"`
	// Command is the argv that starts the host's dockerd (used by Revive).
	Command []string `json:"command"`
}

// StateFile returns the state file path: $DOCKPLAN_LAB_STATE or
// DefaultStateFile.
func StateFile() string {
	if p := os.Getenv(StateFileEnv); p != "" {
		return p
	}
	return DefaultStateFile
}

// Load reads the lab's state from StateFile. It returns an error wrapping
// ErrNotUp when the lab was never brought up (or was torn down).
func Load() (*Lab, error) {
	return LoadFile(StateFile())
}

// LoadFile reads the lab's state from path.
func LoadFile(path string) (*Lab, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no state file %s", ErrNotUp, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	lab, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("lab state %s: %w", path, err)
	}
	lab.stateFile = path
	return lab, nil
}

// Parse decodes a state file's contents and checks that it is usable.
func Parse(data []byte) (*Lab, error) {
	var lab Lab
	if err := json.Unmarshal(data, &lab); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if lab.Version != StateVersion {
		return nil, fmt.Errorf("format version %d, want %d: run `go run ./lab down` and `%s` again",
			lab.Version, StateVersion, UpCommand)
	}
	for i, h := range lab.Hosts {
		if h.Name == "" || h.Address == "" || h.TCPAddress == "" || h.Socket == "" {
			return nil, fmt.Errorf("host %d: name, address, tcp_address and socket must be set", i+1)
		}
	}
	return &lab, nil
}

// Path returns the file this Lab was read from ("" if it was parsed).
func (l *Lab) Path() string { return l.stateFile }

// Host returns the host called name. It also accepts "2" and "lab-host2"
// for "host2".
func (l *Lab) Host(name string) (Host, error) {
	for _, h := range l.Hosts {
		if name == h.Name || name == h.Hostname || name == strconv.Itoa(h.Index) {
			return h, nil
		}
	}
	names := make([]string, 0, len(l.Hosts))
	for _, h := range l.Hosts {
		names = append(names, h.Name)
	}
	return Host{}, fmt.Errorf("no lab host %q: the lab has %s", name, strings.Join(names, ", "))
}

// SocketPath returns the filesystem path of the host's unix socket.
func (h Host) SocketPath() string {
	return strings.TrimPrefix(h.Socket, "unix://")
}

// HostPort returns the host:port of the host's TCP endpoint.
func (h Host) HostPort() string {
	return strings.TrimPrefix(h.TCPAddress, "tcp://")
}

package probe

import (
	"time"

	"github.com/dockplan/dockplan/engine"
)

// FormatVersion is the format_version of a Snapshot in JSON.
const FormatVersion = "1.0"

// Snapshot is what probe saw on every host at one moment.
type Snapshot struct {
	FormatVersion string `json:"format_version"`
	// Project is the configuration's project; Managed lists its containers.
	Project string `json:"project"`
	// Hosts are in the configuration's order.
	Hosts []*HostFacts `json:"hosts"`
}

// Host returns the facts of the named host, or nil.
func (s *Snapshot) Host(name string) *HostFacts {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Unreachable returns the hosts that did not answer.
func (s *Snapshot) Unreachable() []*HostFacts {
	var out []*HostFacts
	for _, h := range s.Hosts {
		if !h.Reachable {
			out = append(out, h)
		}
	}
	return out
}

// Resources is an amount of CPU (millicores) and memory (bytes).
type Resources struct {
	MilliCPU    int64 `json:"milli_cpu"`
	MemoryBytes int64 `json:"memory_bytes"`
}

// Sub returns r minus o, never below zero.
func (r Resources) Sub(o Resources) Resources {
	return Resources{MilliCPU: max(0, r.MilliCPU-o.MilliCPU), MemoryBytes: max(0, r.MemoryBytes-o.MemoryBytes)}
}

// HostFacts is what one host reported.
type HostFacts struct {
	// Name is the host block's name; Address its address or context.
	Name    string `json:"name"`
	Address string `json:"address"`
	// Reachable is false when the host did not answer; Error then says why.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// RoundTrip is how long the first answer (ping + info) took.
	RoundTrip time.Duration `json:"round_trip_ns"`
	// Engine is what the engine says about itself; nil when unreachable.
	Engine *EngineFacts `json:"engine,omitempty"`
	// ReachAddress is where containers on other hosts (or on this one)
	// reach this host's published ports: the host block's public address,
	// or for a unix:// or context host without one, the gateway of the
	// engine's default bridge network.
	ReachAddress string `json:"reach_address"`
	// Labels are the host block's labels, the ones placement uses.
	Labels map[string]string `json:"labels"`
	// Total is what the host has: the engine's NCPU and MemTotal, or the
	// host block's capacity override where it sets one.
	Total Resources `json:"total"`
	// Reserved is the host block's reserve, kept free for the OS.
	Reserved Resources `json:"reserved"`
	// Capacity is Total minus Reserved: what containers may use.
	Capacity Resources `json:"capacity"`
	// Allocated is the sum of the limits of every running container, managed
	// by dockplan or not (memory limit, else memory reservation).
	Allocated Resources `json:"allocated"`
	// Free is Capacity minus Allocated.
	Free Resources `json:"free"`
	// Running and AllContainers count the host's containers.
	Running       int `json:"running"`
	AllContainers int `json:"all_containers"`
	// Unbounded counts running containers with neither a CPU nor a memory
	// limit: they can take any amount, which capacity figures cannot show.
	Unbounded int `json:"unbounded"`
	// UsedPorts are the host ports published by running containers of any
	// project, so placement never puts a fixed port where one is taken.
	UsedPorts []UsedPort `json:"used_ports"`
	// Managed are the project's containers (by the dockplan.project label),
	// ordered by name.
	Managed []ManagedContainer `json:"managed"`
	// Images maps each configuration image reference to what the host has.
	Images map[string]ImageFacts `json:"images"`
	// APICalls counts the engine calls the probe made on this host.
	APICalls int `json:"api_calls"`
}

// EngineFacts is what an engine reports about itself.
type EngineFacts struct {
	Name          string            `json:"name"`
	ServerVersion string            `json:"server_version"`
	APIVersion    string            `json:"api_version"`
	OS            string            `json:"os"`
	Arch          string            `json:"arch"`
	NCPU          int               `json:"ncpu"`
	MemTotal      int64             `json:"mem_total"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// ManagedContainer is one of the project's containers, as found on a host.
type ManagedContainer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Container and Index come from the dockplan.container and
	// dockplan.index labels; Index is -1 when the label is missing or bad.
	Container string `json:"container"`
	Index     int    `json:"index"`
	// ConfigHash is the dockplan.config-hash label.
	ConfigHash string `json:"config_hash"`
	State      string `json:"state"`
	Health     string `json:"health"`
	Image      string `json:"image"`
	ImageID    string `json:"image_id"`
	// Ports are the published ports with the host ports in use.
	Ports []engine.PortBinding `json:"ports"`
	// Resources are the container's limits (only for running containers,
	// which are inspected).
	Resources Resources `json:"resources"`
}

// UsedPort is a host port a running container publishes.
type UsedPort struct {
	HostIP    string `json:"host_ip,omitempty"`
	HostPort  int    `json:"host_port"`
	Protocol  string `json:"protocol"`
	Container string `json:"container"`
}

// ImageFacts says whether an image is on a host.
type ImageFacts struct {
	Present bool   `json:"present"`
	ID      string `json:"id,omitempty"`
}

// Labels dockplan sets on the containers it manages.
const (
	LabelProject    = "dockplan.project"
	LabelContainer  = "dockplan.container"
	LabelIndex      = "dockplan.index"
	LabelConfigHash = "dockplan.config-hash"
)

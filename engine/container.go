package engine

import (
	"strings"
	"time"
)

// ContainerState is a container's lifecycle state as the engine reports it.
type ContainerState int

// Container states, in Docker's vocabulary.
const (
	StateUnknown ContainerState = iota
	StateCreated
	StateRunning
	StatePaused
	StateRestarting
	StateRemoving
	StateExited
	StateDead
)

var stateNames = [...]string{"unknown", "created", "running", "paused", "restarting", "removing", "exited", "dead"}

// String returns Docker's word for the state ("running").
func (s ContainerState) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return stateNames[StateUnknown]
	}
	return stateNames[s]
}

// ParseContainerState maps Docker's word for a state to a ContainerState;
// unknown words give StateUnknown.
func ParseContainerState(word string) ContainerState {
	for i, name := range stateNames {
		if strings.EqualFold(name, word) {
			return ContainerState(i)
		}
	}
	return StateUnknown
}

// HealthStatus is a container's health-check result.
type HealthStatus int

// Health statuses. HealthNone means the container has no health check.
const (
	HealthNone HealthStatus = iota
	HealthStarting
	HealthHealthy
	HealthUnhealthy
)

var healthNames = [...]string{"none", "starting", "healthy", "unhealthy"}

// String returns Docker's word for the status ("healthy").
func (h HealthStatus) String() string {
	if h < 0 || int(h) >= len(healthNames) {
		return healthNames[HealthNone]
	}
	return healthNames[h]
}

// ParseHealthStatus maps Docker's word for a health status; unknown words
// and "" give HealthNone.
func ParseHealthStatus(word string) HealthStatus {
	for i, name := range healthNames {
		if strings.EqualFold(name, word) {
			return HealthStatus(i)
		}
	}
	return HealthNone
}

// RestartPolicyName is a Docker restart policy.
type RestartPolicyName int

// Restart policies.
const (
	RestartNo RestartPolicyName = iota
	RestartAlways
	RestartUnlessStopped
	RestartOnFailure
)

var restartNames = [...]string{"no", "always", "unless-stopped", "on-failure"}

// String returns Docker's word for the policy ("unless-stopped").
func (r RestartPolicyName) String() string {
	if r < 0 || int(r) >= len(restartNames) {
		return restartNames[RestartNo]
	}
	return restartNames[r]
}

// ParseRestartPolicyName maps Docker's word for a policy; "" gives
// RestartNo, and an unknown word reports false.
func ParseRestartPolicyName(word string) (RestartPolicyName, bool) {
	if word == "" {
		return RestartNo, true
	}
	for i, name := range restartNames {
		if name == word {
			return RestartPolicyName(i), true
		}
	}
	return RestartNo, false
}

// RestartPolicy is a container's restart policy.
type RestartPolicy struct {
	// Name is the policy.
	Name RestartPolicyName
	// MaxRetries applies to RestartOnFailure only; zero means no limit.
	MaxRetries int
}

// MountType is the kind of a mount.
type MountType int

// Mount types.
const (
	MountBind MountType = iota
	MountVolume
	MountTmpfs
)

var mountNames = [...]string{"bind", "volume", "tmpfs"}

// String returns Docker's word for the mount type.
func (m MountType) String() string {
	if m < 0 || int(m) >= len(mountNames) {
		return mountNames[MountBind]
	}
	return mountNames[m]
}

// Mount is a bind mount, named volume or tmpfs in a container.
type Mount struct {
	// Type is the kind of mount.
	Type MountType
	// Source is the host path (bind) or volume name (volume); empty for tmpfs
	// and anonymous volumes.
	Source string
	// Target is the path inside the container.
	Target string
	// ReadOnly mounts it read-only.
	ReadOnly bool
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	// ContainerPort is the port inside the container.
	ContainerPort int
	// Protocol is "tcp" or "udp"; empty means "tcp".
	Protocol string
	// HostIP is the host address to bind; empty means all addresses.
	HostIP string
	// HostPort is the host port; zero lets the engine pick one (see
	// Container.Ports for the port it picked).
	HostPort int
}

// Resources are a container's CPU and memory limits. Zero means no limit.
type Resources struct {
	// NanoCPUs is the CPU limit in billionths of a CPU (0.5 CPU = 5e8).
	NanoCPUs int64
	// CPUQuota and CPUPeriod are the CFS limit, in microseconds, when it was
	// set that way (docker run --cpu-quota) instead of with NanoCPUs.
	CPUQuota, CPUPeriod int64
	// Memory is the hard memory limit in bytes.
	Memory int64
	// MemoryReservation is the soft memory limit in bytes.
	MemoryReservation int64
}

// MilliCPUs returns the CPU limit in millicores from NanoCPUs, or else from
// CPUQuota/CPUPeriod (period 100ms when unset); 0 when unlimited.
func (r Resources) MilliCPUs() int64 {
	switch {
	case r.NanoCPUs > 0:
		return r.NanoCPUs / 1e6
	case r.CPUQuota > 0:
		period := r.CPUPeriod
		if period <= 0 {
			period = 100000
		}
		return r.CPUQuota * 1000 / period
	}
	return 0
}

// MemoryBytes returns the memory limit, or else the reservation; 0 when
// unlimited.
func (r Resources) MemoryBytes() int64 {
	if r.Memory > 0 {
		return r.Memory
	}
	return r.MemoryReservation
}

// Healthcheck is a container health check.
type Healthcheck struct {
	// Test is the check: ["CMD", "prog", "arg"], ["CMD-SHELL", "cmd"] or
	// ["NONE"] to disable the image's check.
	Test []string
	// Interval, Timeout and StartPeriod are zero for the engine's defaults.
	Interval, Timeout, StartPeriod time.Duration
	// Retries is the number of failures before unhealthy; zero for the
	// engine's default.
	Retries int
}

// ContainerSpec is everything dockplan sets when it creates a container.
type ContainerSpec struct {
	// Name is the container name (<project>-<container>-<index>).
	Name string
	// Image is the image reference; it must already be on the engine.
	Image string
	// Cmd and Entrypoint override the image's; nil keeps the image's.
	Cmd, Entrypoint []string
	// Env holds "KEY=value" entries.
	Env []string
	// Labels are the container's labels, dockplan.* identity included.
	Labels map[string]string
	// Ports are the published ports.
	Ports []PortBinding
	// Mounts are the bind mounts, volumes and tmpfs mounts.
	Mounts []Mount
	// Resources are the CPU and memory limits.
	Resources Resources
	// Restart is the restart policy.
	Restart RestartPolicy
	// Healthcheck overrides the image's health check when set.
	Healthcheck *Healthcheck
	// User, WorkingDir and Hostname override the image's when set.
	User, WorkingDir, Hostname string
	// ExtraHosts are "name:ip" entries added to /etc/hosts.
	ExtraHosts []string
	// Network is the network to attach to; empty means the default bridge.
	Network string
	// StopTimeout is how long a stop waits before killing; zero means the
	// engine's default (10s).
	StopTimeout time.Duration
	// ReadOnly mounts the root file system read-only; Init runs Docker's
	// init as PID 1.
	ReadOnly, Init bool `json:",omitempty"`
	// CapAdd and CapDrop add and drop Linux capabilities ("NET_ADMIN").
	CapAdd, CapDrop []string `json:",omitempty"`
	// Tmpfs maps a path in the container to tmpfs mount options ("" for
	// the defaults).
	Tmpfs map[string]string `json:",omitempty"`
	// ShmSize is /dev/shm's size in bytes; zero for the engine's default.
	ShmSize int64 `json:",omitempty"`
	// LogDriver and LogOptions choose the log driver; empty for the
	// engine's default.
	LogDriver  string            `json:",omitempty"`
	LogOptions map[string]string `json:",omitempty"`
	// Ulimits are resource limits (--ulimit); Sysctls kernel parameters
	// (--sysctl).
	Ulimits []Ulimit          `json:",omitempty"`
	Sysctls map[string]string `json:",omitempty"`
}

// Ulimit is one resource limit: soft and hard, -1 for unlimited.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// ContainerSummary is a container as ListContainers reports it.
type ContainerSummary struct {
	// ID is the full container ID.
	ID string
	// Name is the container name without a leading slash.
	Name string
	// Image is the image reference the container was created from, and
	// ImageID the image's ID.
	Image, ImageID string
	// Labels are the container's labels.
	Labels map[string]string
	// State is the lifecycle state.
	State ContainerState
	// Status is the engine's human text ("Up 3 minutes (healthy)").
	Status string
	// Created is when the container was created.
	Created time.Time
	// Ports are the published ports with the host ports in use.
	Ports []PortBinding
}

// Container is one container's details, as InspectContainer reports them.
type Container struct {
	// ID is the full container ID.
	ID string
	// Name is the container name without a leading slash.
	Name string
	// ImageID is the ID of the image the container runs.
	ImageID string
	// State is the lifecycle state.
	State ContainerState
	// Health is the health-check result; HealthNone without a check.
	Health HealthStatus
	// HealthLog holds the output of the last health checks, oldest first.
	HealthLog []string
	// ExitCode is the last exit's code.
	ExitCode int
	// OOMKilled says the last exit was the kernel's OOM killer.
	OOMKilled bool
	// Error is the engine's message about the last failed start, if any.
	Error string
	// Pid is the main process ID while running.
	Pid int
	// RestartCount counts restarts done by the engine's restart policy.
	RestartCount int
	// Created, StartedAt and FinishedAt are zero when unknown.
	Created, StartedAt, FinishedAt time.Time
	// Spec is the container's configuration, read back in this package's
	// terms. Values the engine fills in (image defaults) appear here too,
	// so compare only the fields the caller set.
	Spec ContainerSpec
	// Ports are the published ports with the host ports the engine picked;
	// empty unless running.
	Ports []PortBinding
	// IPAddresses maps each attached network to the container's address.
	IPAddresses map[string]string
}

// Running reports whether the container is running (or restarting or
// paused, which also hold their resources).
func (c Container) Running() bool {
	return c.State == StateRunning || c.State == StateRestarting || c.State == StatePaused
}

package planner

import (
	"fmt"
)

// PlanFormatVersion is the format_version of a Plan in JSON.
const PlanFormatVersion = "1.0"

// Action is what a step does.
type Action int

const (
	// Create makes and starts a new container.
	Create Action = iota
	// Start starts an existing, stopped container.
	Start
	// Update changes CPU/memory limits or the restart policy in place.
	Update
	// Replace re-creates a container on the same host.
	Replace
	// Move re-creates a container on another host.
	Move
	// Delete stops and removes a container.
	Delete
	// Pull brings an image to a host.
	Pull
	// Adopt records in the state a container that matches the
	// configuration but the state does not know; nothing changes on hosts.
	Adopt
)

var actionNames = [...]string{"create", "start", "update", "replace", "move", "delete", "pull", "adopt"}

// String returns the action's name as JSON and text use it.
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "unknown"
	}
	return actionNames[a]
}

// Symbol is the action's sign in human plans, as Terraform draws them.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Start, Update:
		return "~"
	case Replace, Move:
		return "-/+"
	case Delete:
		return "-"
	case Pull:
		return "↓"
	default:
		return "="
	}
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action's name.
func (a *Action) UnmarshalText(b []byte) error {
	for i, n := range actionNames {
		if n == string(b) {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("unknown action %q", b)
}

// Plan is an ordered DAG of steps. It is computed once into the structure
// that JSON exposes; text and Markdown are rendered from it.
type Plan struct {
	FormatVersion string `json:"format_version"`
	Project       string `json:"project"`
	// Refreshed is false when the plan was made from state and
	// configuration alone (-refresh=false), without asking the hosts.
	Refreshed bool `json:"refreshed"`
	// StateLineage and StateSerial identify the state the plan was made
	// from; empty lineage means there was no state yet.
	StateLineage string `json:"state_lineage"`
	StateSerial  int64  `json:"state_serial"`
	// Steps are in an order that respects every dependency: a step comes
	// after everything in its DependsOn.
	Steps []*Step `json:"steps"`
	// Hosts are the configuration's hosts with their capacity before and
	// after the plan, in configuration order.
	Hosts []*HostPlan `json:"hosts"`
	// Warnings say what the plan could not check or chose not to do.
	Warnings []string `json:"warnings"`
	// Summary counts the steps by action.
	Summary Summary `json:"summary"`
}

// Summary counts a plan's steps by action.
type Summary struct {
	Create  int `json:"create"`
	Start   int `json:"start"`
	Update  int `json:"update"`
	Replace int `json:"replace"`
	Move    int `json:"move"`
	Delete  int `json:"delete"`
	Pull    int `json:"pull"`
	Adopt   int `json:"adopt"`
}

// Add counts one step of action a.
func (s *Summary) Add(a Action) {
	switch a {
	case Create:
		s.Create++
	case Start:
		s.Start++
	case Update:
		s.Update++
	case Replace:
		s.Replace++
	case Move:
		s.Move++
	case Delete:
		s.Delete++
	case Pull:
		s.Pull++
	case Adopt:
		s.Adopt++
	}
}

// Changes reports whether the plan changes anything (hosts or state).
func (p *Plan) Changes() bool { return len(p.Steps) > 0 }

// Step is one node of the plan DAG.
type Step struct {
	// ID is unique in the plan: "create web[1]", "pull node1 nginx:1".
	ID     string `json:"id"`
	Action Action `json:"action"`
	// Address is the instance address; empty for pull.
	Address   string `json:"address,omitempty"`
	Container string `json:"container,omitempty"`
	Index     int    `json:"index"`
	// Host is where the step acts (the new host of a move).
	Host string `json:"host"`
	// FromHost is the host a move or delete takes the container from.
	FromHost string `json:"from_host,omitempty"`
	// Name is the Docker container name.
	Name string `json:"name,omitempty"`
	// Image is the image reference (create, replace, move, pull).
	Image string `json:"image,omitempty"`
	// ImageSource is "registry" or "local" for pull steps.
	ImageSource string `json:"image_source,omitempty"`
	// OldContainerID is the container a replace, move, start, update,
	// adopt or delete acts on.
	OldContainerID string `json:"old_container_id,omitempty"`
	// Reason says in words why the step is needed; the applier never reads it.
	Reason string `json:"reason"`
	// ForcedBy names the fields that force a replace ("image", "env.API_KEY").
	ForcedBy []string `json:"forced_by,omitempty"`
	// Drifted is set when the step repairs a difference between the state
	// and what the host really has.
	Drifted bool `json:"drifted,omitempty"`
	// CreateBeforeDestroy: a replace creates the new container under a
	// temporary name before removing the old one.
	CreateBeforeDestroy bool `json:"create_before_destroy,omitempty"`
	// DependsOn are the IDs of the steps that must finish first.
	DependsOn []string `json:"depends_on"`
	// WaitHealthy are the addresses that must be healthy before this step
	// starts (dependencies that declare a health check).
	WaitHealthy []string `json:"wait_healthy,omitempty"`
	// Changes are the attribute changes, sensitive values hidden.
	Changes []AttrChange `json:"changes,omitempty"`
	// Resources are the instance's requests after the step.
	Resources Resources `json:"resources"`
	// Placement explains the choice of host for create and move.
	Placement *PlacementNote `json:"placement,omitempty"`
}

// AttrChange is one attribute of a step, before and after. Values are nil
// when absent, unknown or sensitive; the flags say which.
type AttrChange struct {
	// Path is the attribute: "image", "env.DB_HOST", "ports", "resources.cpu".
	Path   string  `json:"path"`
	Before *string `json:"before,omitempty"`
	After  *string `json:"after,omitempty"`
	// AfterUnknown: the value is known only after apply.
	AfterUnknown bool `json:"after_unknown,omitempty"`
	// Sensitive: the values are hidden.
	Sensitive bool `json:"sensitive,omitempty"`
	// ForcesReplacement: this change needs a new container.
	ForcesReplacement bool `json:"forces_replacement,omitempty"`
}

// Resources is an amount of CPU (millicores) and memory (bytes).
type Resources struct {
	MilliCPU    int64 `json:"milli_cpu"`
	MemoryBytes int64 `json:"memory_bytes"`
}

func (r Resources) add(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU + o.MilliCPU, MemoryBytes: r.MemoryBytes + o.MemoryBytes}
}

func (r Resources) sub(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU - o.MilliCPU, MemoryBytes: r.MemoryBytes - o.MemoryBytes}
}

// PlacementNote says why a host was chosen.
type PlacementNote struct {
	Strategy string  `json:"strategy"`
	Score    float64 `json:"score"`
	// RunnerUp is the next best host; empty when only one host fit.
	RunnerUp      string  `json:"runner_up,omitempty"`
	RunnerUpScore float64 `json:"runner_up_score"`
	// RejectedCount is how many hosts did not fit.
	RejectedCount int `json:"rejected_count"`
	// Rejected lists the hosts that did not fit, with every reason (only
	// when at most 16 did not).
	Rejected []Rejection `json:"rejected,omitempty"`
}

// Rejection is a host a placement filter refused, with every reason.
type Rejection struct {
	Host    string   `json:"host"`
	Reasons []string `json:"reasons"`
}

// HostPlan is one host's capacity before and after the plan.
type HostPlan struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	// Capacity is what containers may use (total minus reserve); zero
	// when unknown.
	Capacity Resources `json:"capacity"`
	// Before and After are the allocated amounts.
	Before Resources `json:"allocated_before"`
	After  Resources `json:"allocated_after"`
	// Fingerprint is what the plan saw on the host; apply refuses a saved
	// plan when the host no longer matches it.
	Fingerprint HostFingerprint `json:"fingerprint"`
}

// HostFingerprint is what a saved plan checks on a host before applying.
type HostFingerprint struct {
	Capacity Resources `json:"capacity"`
	// Containers are the project's containers on the host, by name.
	Containers []FingerprintContainer `json:"containers"`
}

// FingerprintContainer is one managed container as the plan saw it.
type FingerprintContainer struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	ConfigHash string `json:"config_hash"`
	State      string `json:"state"`
}

package hclspec

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Config is a decoded configuration directory: every *.dockplan.hcl file in
// it, with variables resolved and every container expanded into instances.
type Config struct {
	// Dir is the configuration directory as given to Load.
	Dir string
	// Project names the deployment; lowercase letters, digits and dashes.
	Project string
	// ProjectRange is where project was set.
	ProjectRange hcl.Range
	// Variables are the declared input variables, sorted by name, each
	// holding its final value.
	Variables []*Variable
	// Locals holds every local value by name. Values may carry marks.
	Locals map[string]cty.Value
	// Hosts are the declared hosts in declaration order; when none is
	// declared it holds the one implicit host "local".
	Hosts []*Host
	// Containers are the declared containers in declaration order.
	Containers []*Container
	// Outputs are the declared outputs in declaration order.
	Outputs []*Output
	// State is the state block; nil when there is none (the state file
	// dockplan.state.json beside the configuration).
	State *StateConfig

	// Files holds the parsed sources by file name, for source snippets.
	Files map[string]*hcl.File

	varsVal   cty.Value
	localsVal cty.Value
	funcs     funcTable
}

// Variable is an input variable block and the value it ended up with.
type Variable struct {
	Name        string
	Type        cty.Type
	Description string
	// Sensitive marks every value derived from this variable as sensitive.
	Sensitive bool
	// Default is cty.NilVal when the block has no default.
	Default cty.Value
	// Value is the final value after -var, -var-file, environment and
	// default, converted to Type; marked Sensitive when Sensitive is true.
	Value cty.Value
	// Source says where Value came from: "-var", a var file name,
	// "environment" or "default".
	Source    string
	DeclRange hcl.Range
}

// Host is one Docker engine, declared in a host block.
type Host struct {
	Name string
	// Address is the engine endpoint: unix://, tcp:// or ssh://. Empty when
	// Context is set.
	Address string
	// Context names a docker context to use instead of Address.
	Context string
	// PublicAddress is where other hosts reach this host's published ports.
	// Empty means "the host part of Address" (see ReachAddress).
	PublicAddress string
	// Labels are the host's placement labels.
	Labels map[string]string
	// Capacity overrides what the engine reports; nil when not declared.
	Capacity *Resources
	// Reserve is kept free for the operating system; zero when not declared.
	Reserve Resources
	// TLS holds client certificate files for tcp:// hosts; nil when absent.
	TLS *TLSFiles
	// Insecure allows plain tcp:// to a non-loopback address.
	Insecure bool
	// Implicit is true for the host "local" that exists when no host block
	// is declared.
	Implicit  bool
	DeclRange hcl.Range
}

// TLSFiles are the paths of a host's TLS material, resolved against the
// configuration directory.
type TLSFiles struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// Resources is an amount of CPU and memory.
type Resources struct {
	// MilliCPU is CPU in thousandths of a core.
	MilliCPU int64
	// MemoryBytes is memory in bytes.
	MemoryBytes int64
}

// Container is a container block. With count it has Count instances;
// without, exactly one.
type Container struct {
	Name string
	// Count is the number of instances.
	Count int
	// Counted is true when the block sets count; its instances are then
	// addressed name[i] and it is a list in expressions.
	Counted bool
	// Placement holds the scheduling rules.
	Placement Placement
	// Links are the link blocks, in declaration order.
	Links []Link
	// DependsOn names the containers listed in depends_on, sorted.
	DependsOn []string
	// Deps names every container this one must be ordered after (links,
	// depends_on and container.* references), sorted and without repeats.
	Deps []string
	// ImageSource is "registry" (pull) or "local" (copied from the engine of
	// the machine running dockplan).
	ImageSource string
	// Instances are the expanded instances, index order.
	Instances []*Instance
	DeclRange hcl.Range
}

// Placement holds a container's scheduling rules.
type Placement struct {
	// Hosts is an allow-list of host names; empty allows every host.
	Hosts []string
	// Labels must all match a host's labels.
	Labels map[string]string
	// Strategy is how a host is chosen among those that fit.
	Strategy Strategy
	// DistinctHosts allows at most one instance of the container per host.
	DistinctHosts bool
}

// Strategy is a placement scoring strategy.
type Strategy int

const (
	// Spread places an instance where the most resources stay free.
	Spread Strategy = iota
	// Binpack places an instance where the fewest resources stay free.
	Binpack
)

// String returns the strategy as written in HCL.
func (s Strategy) String() string {
	if s == Binpack {
		return "binpack"
	}
	return "spread"
}

// Link is a link block: the container gets the target's address in its
// environment and /etc/hosts, and is ordered after it.
type Link struct {
	// Target is the linked container's name.
	Target string
	// Alias names the environment variables and the /etc/hosts entry;
	// defaults to Target.
	Alias string
	// Port is the target's container port to connect to; 0 means the
	// target's first declared port.
	Port      int
	DeclRange hcl.Range
}

// Instance is one instance of a container, with every attribute evaluated
// for its count.index.
type Instance struct {
	// Address is the canonical address: "web[1]", or "db" without count.
	Address string
	// Container is the container block's name.
	Container string
	// Index is the instance's count.index (0 without count).
	Index int
	// Name is the Docker container name, <project>-<container>-<index>.
	Name  string
	Image string
	// Env is a map(string); elements may be unknown (known after apply)
	// or marked Sensitive.
	Env Deferred
	// Command and Entrypoint are list(string) or null.
	Command    Deferred
	Entrypoint Deferred
	// Labels are extra container labels, a map(string).
	Labels     Deferred
	Ports      []Port
	Volumes    []Volume
	Resources  Resources
	Restart    RestartPolicy
	Health     *Health
	Hostname   string
	User       string
	WorkingDir string
	// StopTimeout is nil when not declared (the engine default applies).
	StopTimeout *time.Duration
	// ReadOnly mounts the root file system read-only; Init runs an init
	// process (tini) as PID 1.
	ReadOnly, Init bool
	// CapAdd and CapDrop are capability names without CAP_, sorted.
	CapAdd, CapDrop []string
	// Tmpfs are tmpfs mounts, sorted by target.
	Tmpfs []Tmpfs
	// ShmSize is /dev/shm's size in bytes; 0 for Docker's 64MiB.
	ShmSize int64
	// Logging is the log driver; nil for the engine's default.
	Logging *Logging
	// Ulimits are sorted by name; Sysctls map a kernel parameter to its
	// value; ExtraHosts map a host name to an IP for /etc/hosts.
	Ulimits    []Ulimit
	Sysctls    map[string]string
	ExtraHosts map[string]string
}

// Deferred is an attribute value that may depend on values known only after
// placement or apply. Value is what decoding could compute, with unknown
// parts where container.* values were used; Expr is kept so the planner and
// the applier can evaluate it again with more known.
type Deferred struct {
	Value cty.Value
	Expr  hcl.Expression
	// Refs are the container names the expression refers to.
	Refs []string
}

// Known reports whether the value is wholly known.
func (d Deferred) Known() bool { return d.Value.IsWhollyKnown() }

// Port is a published port.
type Port struct {
	// HostIP binds the published port to one address; empty for all.
	HostIP string
	// HostPort is the published port; 0 lets Docker pick one.
	HostPort int
	// ContainerPort is the port inside the container.
	ContainerPort int
	// Protocol is "tcp" or "udp".
	Protocol string
	Range    hcl.Range
}

// Key returns the container-side key used in expressions: "8080" for tcp,
// "53/udp" for udp.
func (p Port) Key() string {
	if p.Protocol == "udp" {
		return itoa(p.ContainerPort) + "/udp"
	}
	return itoa(p.ContainerPort)
}

// Volume is a bind mount or a named volume.
type Volume struct {
	// Source is an absolute host path, a volume name, or empty for an
	// anonymous volume.
	Source string
	// Target is the absolute path inside the container.
	Target   string
	ReadOnly bool
	// Named is true when Source is a volume name rather than a path.
	Named bool
}

// RestartPolicy is Docker's restart policy.
type RestartPolicy struct {
	// Name is "no", "always", "unless-stopped" or "on-failure".
	Name string
	// MaxRetries applies to on-failure; 0 means unlimited.
	MaxRetries int
}

// String returns the policy as written in HCL.
func (r RestartPolicy) String() string {
	if r.Name == "on-failure" && r.MaxRetries > 0 {
		return r.Name + ":" + itoa(r.MaxRetries)
	}
	return r.Name
}

// Health is a container health check.
type Health struct {
	// Command is Docker's test: ["CMD", ...], ["CMD-SHELL", "..."] or
	// ["NONE"]. It may carry sensitive marks.
	Command     cty.Value
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// Output is an output block.
type Output struct {
	Name        string
	Description string
	Sensitive   bool
	// Value is the decode-time value; unknown parts are known after apply.
	Value     Deferred
	DeclRange hcl.Range
}

// Host returns the host with the given name, or nil.
func (c *Config) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Container returns the container with the given name, or nil.
func (c *Config) Container(name string) *Container {
	for _, ct := range c.Containers {
		if ct.Name == name {
			return ct
		}
	}
	return nil
}

// Variable returns the variable with the given name, or nil.
func (c *Config) Variable(name string) *Variable {
	for _, v := range c.Variables {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Instances returns every instance of every container, in container
// declaration order, then index order.
func (c *Config) Instances() []*Instance {
	var out []*Instance
	for _, ct := range c.Containers {
		out = append(out, ct.Instances...)
	}
	return out
}

package hclspec

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Tmpfs is a tmpfs mount: Docker's --tmpfs TARGET:OPTIONS.
type Tmpfs struct {
	// Target is the absolute path inside the container.
	Target string
	// Options are mount options, "size=64m,mode=1777"; empty for the
	// engine's defaults.
	Options string
}

// capabilities are the Linux capabilities Docker 20.10 knows, without
// their CAP_ prefix; "ALL" stands for every one.
var capabilities = []string{
	"ALL", "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL",
	"LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN",
	"SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
}

// ParseCapability normalises a capability name as Docker takes it
// ("net_admin", "CAP_NET_ADMIN" → "NET_ADMIN") and checks it exists.
func ParseCapability(s string) (string, error) {
	c := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CAP_")
	if !slices.Contains(capabilities, c) {
		return "", fmt.Errorf("%q is not a Linux capability; write one such as \"NET_ADMIN\" or \"NET_BIND_SERVICE\", or \"ALL\"", s)
	}
	return c, nil
}

// capabilityList decodes cap_add or cap_drop: capabilities, normalised,
// without repeats, sorted.
func (d *decoder) capabilityList(a *hcl.Attribute, val cty.Value) []string {
	names, ok := d.toStringList(a, val)
	if !ok {
		return nil
	}
	var out []string
	for _, n := range names {
		c, err := ParseCapability(n)
		if err != nil {
			d.errorf(a.Expr.Range().Ptr(), "Invalid capability", "%s: %s.", a.Name, err)
			continue
		}
		if slices.Contains(out, c) {
			d.errorf(a.Expr.Range().Ptr(), "Duplicate capability", "%s names %s twice.", a.Name, c)
			continue
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

var tmpfsOption = regexp.MustCompile(`^(ro|rw|noexec|exec|nosuid|suid|nodev|dev|size=[0-9]+[kmgKMG%]?|nr_inodes=[0-9]+[kmgKMG]?|mode=[0-7]{3,4}|uid=[0-9]+|gid=[0-9]+)$`)

// ParseTmpfs parses "TARGET" or "TARGET:OPTIONS" (options as Docker's
// --tmpfs and mount(8) take them: "size=64m,mode=1777,noexec").
func ParseTmpfs(s string) (Tmpfs, error) {
	target, opts, _ := strings.Cut(s, ":")
	if !path.IsAbs(target) || path.Clean(target) != target || target == "/" {
		return Tmpfs{}, fmt.Errorf("tmpfs %q: the target must be a clean absolute path other than /, such as \"/tmp\" or \"/run:size=64m\"", s)
	}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			if !tmpfsOption.MatchString(o) {
				return Tmpfs{}, fmt.Errorf("tmpfs %q: %q is not a tmpfs option; use size=64m, mode=1777, uid=N, gid=N, nr_inodes=N, ro, noexec, nosuid or nodev", s, o)
			}
		}
	}
	return Tmpfs{Target: target, Options: opts}, nil
}

// tmpfs decodes the tmpfs attribute; a target may not also be a volume's.
func (ev *instanceEval) tmpfs(a *hcl.Attribute, val cty.Value) {
	d := ev.d
	specs, ok := d.toStringList(a, val)
	if !ok {
		return
	}
	for _, s := range specs {
		t, err := ParseTmpfs(s)
		if err != nil {
			d.errorf(a.Expr.Range().Ptr(), "Invalid tmpfs", "%s.", capitalize(err.Error()))
			continue
		}
		if slices.ContainsFunc(ev.inst.Tmpfs, func(o Tmpfs) bool { return o.Target == t.Target }) {
			d.errorf(a.Expr.Range().Ptr(), "Duplicate tmpfs target", "Two tmpfs mounts at %s.", t.Target)
			continue
		}
		ev.inst.Tmpfs = append(ev.inst.Tmpfs, t)
	}
	slices.SortFunc(ev.inst.Tmpfs, func(x, y Tmpfs) int { return strings.Compare(x.Target, y.Target) })
}

// checkMountTargets refuses a tmpfs mounted where a volume is.
func (ev *instanceEval) checkMountTargets(rng *hcl.Range) {
	for _, t := range ev.inst.Tmpfs {
		for _, v := range ev.inst.Volumes {
			if v.Target == t.Target {
				ev.d.errorf(rng, "Duplicate mount target", "A volume and a tmpfs both mount at %s; keep one.", t.Target)
			}
		}
	}
}

// Logging is a container's log driver: Docker's --log-driver and
// --log-opt.
type Logging struct {
	// Driver is the driver's name ("json-file", "local", "journald",
	// "syslog", a plugin's "name:tag").
	Driver string
	// Options is a map(string), or null for none; values may be marked
	// Sensitive (a token for a remote log service).
	Options cty.Value
}

var loggingSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "driver", Required: true}, {Name: "options"}},
}

var logDriverName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./:-]*$`)

// decodeLogging decodes a logging block.
func (d *decoder) decodeLogging(b *hcl.Block, ctx *hcl.EvalContext, counted bool) *Logging {
	content, diags := b.Body.Content(loggingSchema)
	d.diags = append(d.diags, diags...)
	scope := refScope{count: counted, what: "logging"}
	l := &Logging{Options: cty.NullVal(cty.Map(cty.String))}
	for _, a := range attrsInOrder(content.Attributes) {
		val, _, ok := d.eval(a.Expr, ctx, scope)
		if !ok {
			continue
		}
		switch a.Name {
		case "driver":
			if s, ok := d.toString(a, val); ok {
				if !logDriverName.MatchString(s) {
					d.errorf(a.Expr.Range().Ptr(), "Invalid log driver", "driver %q is not a log driver name; write one such as \"json-file\", \"local\", \"journald\" or \"syslog\".", s)
				}
				l.Driver = s
			}
		case "options":
			v, ok := d.convertAttr(a, val, cty.Map(cty.String), allowSensitive)
			if !ok {
				continue
			}
			plain, _ := v.UnmarkDeep()
			if !plain.IsNull() {
				for it := plain.ElementIterator(); it.Next(); {
					k, e := it.Element()
					if k.AsString() == "" || e.IsNull() {
						d.errorf(a.Expr.Range().Ptr(), "Invalid log option", "Log option names must not be empty and values must not be null.")
						ok = false
					}
				}
			}
			if ok {
				l.Options = v
			}
		}
	}
	return l
}

// singleBlocks are the container blocks that may appear at most once.
var singleBlocks = []string{"resources", "placement", "health", "logging"}

// checkSingleBlocks refuses a second resources, placement, health or
// logging block in one container.
func (d *decoder) checkSingleBlocks(content *hcl.BodyContent) {
	seen := map[string]bool{}
	for _, b := range content.Blocks {
		if !slices.Contains(singleBlocks, b.Type) {
			continue
		}
		if seen[b.Type] {
			d.errorf(b.DefRange.Ptr(), "Duplicate "+b.Type+" block", "A container takes at most one %s block; merge them.", b.Type)
		}
		seen[b.Type] = true
	}
}

// Ulimit is a resource limit for the container's processes (--ulimit).
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// ulimitNames are the limits Docker accepts.
var ulimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
	"nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// ParseUlimit parses a limit's value: "N" (soft and hard) or "SOFT:HARD",
// each a whole number or -1 for unlimited, soft not above hard.
func ParseUlimit(name, value string) (Ulimit, error) {
	if !slices.Contains(ulimitNames, name) {
		return Ulimit{}, fmt.Errorf("%q is not a ulimit; use one of %s", name, strings.Join(ulimitNames, ", "))
	}
	softS, hardS, pair := strings.Cut(value, ":")
	if !pair {
		hardS = softS
	}
	parse := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n, err == nil && n >= -1
	}
	soft, ok1 := parse(softS)
	hard, ok2 := parse(hardS)
	switch {
	case !ok1 || !ok2:
		return Ulimit{}, fmt.Errorf("ulimit %s = %q: write a whole number, or SOFT:HARD such as \"1024:65536\" (-1 for unlimited)", name, value)
	case hard != -1 && (soft == -1 || soft > hard):
		return Ulimit{}, fmt.Errorf("ulimit %s = %q: the soft limit is above the hard one", name, value)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// ulimits decodes the ulimits attribute, a map of name to "N" or
// "SOFT:HARD" (numbers are taken as strings).
func (ev *instanceEval) ulimits(a *hcl.Attribute, val cty.Value) {
	m, ok := ev.d.toStringMap(a, val)
	if !ok {
		return
	}
	for _, name := range sortedKeys(m) {
		u, err := ParseUlimit(name, m[name])
		if err != nil {
			ev.d.errorf(a.Expr.Range().Ptr(), "Invalid ulimit", "%s.", capitalize(err.Error()))
			continue
		}
		ev.inst.Ulimits = append(ev.inst.Ulimits, u)
	}
}

var sysctlName = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$`)

// sysctls decodes the sysctls attribute: kernel parameter → value.
func (ev *instanceEval) sysctls(a *hcl.Attribute, val cty.Value) {
	m, ok := ev.d.toStringMap(a, val)
	if !ok {
		return
	}
	for _, k := range sortedKeys(m) {
		if !sysctlName.MatchString(k) {
			ev.d.errorf(a.Expr.Range().Ptr(), "Invalid sysctl", "%q is not a kernel parameter name; write one such as \"net.core.somaxconn\".", k)
			return
		}
	}
	if len(m) > 0 {
		ev.inst.Sysctls = m
	}
}

var hostEntryName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$`)

// extraHosts decodes the extra_hosts attribute: host name → IP address,
// added to /etc/hosts; a name may not be a link's alias (links add those).
func (ev *instanceEval) extraHosts(a *hcl.Attribute, val cty.Value) {
	m, ok := ev.d.toStringMap(a, val)
	if !ok {
		return
	}
	for _, name := range sortedKeys(m) {
		ip, err := netip.ParseAddr(m[name])
		switch {
		case !hostEntryName.MatchString(name):
			ev.d.errorf(a.Expr.Range().Ptr(), "Invalid host name", "extra_hosts: %q is not a host name.", name)
			return
		case err != nil:
			ev.d.errorf(a.Expr.Range().Ptr(), "Invalid IP address", "extra_hosts[%q] = %q is not an IP address; write one such as \"10.0.0.5\".", name, m[name])
			return
		}
		for _, l := range ev.decl.c.Links {
			if strings.EqualFold(l.Alias, name) {
				ev.d.errorf(a.Expr.Range().Ptr(), "Duplicate host entry", "extra_hosts names %q, which the link to %s already puts in /etc/hosts; drop one.", name, l.Target)
				return
			}
		}
		m[name] = ip.String()
	}
	if len(m) > 0 {
		ev.inst.ExtraHosts = m
	}
}

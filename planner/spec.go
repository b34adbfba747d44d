package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Labels dockplan sets on every container it manages.
const (
	LabelProject    = "dockplan.project"
	LabelContainer  = "dockplan.container"
	LabelIndex      = "dockplan.index"
	LabelConfigHash = "dockplan.config-hash"
)

// World is what is known of every instance's placement and ports while a
// plan is made or applied: the host each instance will be on and the host
// ports it has (or will have, when fixed).
type World struct {
	// HostAddress maps a host name to where its published ports are
	// reached; empty when unknown.
	HostAddress map[string]string
	// Placed maps an instance address to its host.
	Placed map[string]string
	// Ports maps an instance address to its published ports by key
	// ("8080", "53/udp"); a missing key is unknown unless the port is fixed.
	Ports map[string]map[string]int
}

// NewWorld returns an empty World.
func NewWorld() *World {
	return &World{HostAddress: map[string]string{}, Placed: map[string]string{}, Ports: map[string]map[string]int{}}
}

// values returns what expressions may know of one instance.
func (w *World) values(addr string) hclspec.InstanceValues {
	host := w.Placed[addr]
	return hclspec.InstanceValues{Host: host, HostAddress: w.HostAddress[host], Ports: w.Ports[addr]}
}

// Resolved is an instance's create configuration as far as it is known,
// flattened into attributes for diffs and the config hash.
type Resolved struct {
	// Spec is the create configuration; unknown values are empty strings.
	Spec engine.ContainerSpec
	// Attrs are the flattened attributes, sorted by path.
	Attrs []Attr
	// Known is true when no attribute is unknown.
	Known bool
	// Hash is the config hash (empty unless Known).
	Hash string
}

// Attr is one flattened attribute of a create configuration.
type Attr struct {
	Path      string
	Value     string
	Unknown   bool
	Sensitive bool
	// Replace is true for attributes Docker cannot change in place.
	Replace bool
}

// SensitivePaths lists the paths of the sensitive attributes.
func (r *Resolved) SensitivePaths() []string {
	var out []string
	for _, a := range r.Attrs {
		if a.Sensitive {
			out = append(out, a.Path)
		}
	}
	return out
}

// Resolve builds an instance's create configuration from the configuration
// and what w knows: deferred expressions are evaluated again, links become
// environment variables and /etc/hosts entries.
func Resolve(cfg *hclspec.Config, inst *hclspec.Instance, w *World) (*Resolved, error) {
	vals, err := evalDeferred(inst, func() *hcl.EvalContext {
		return cfg.EvalContext(inst, cfg.ContainerValuesOf(deferredRefs(inst), w.values))
	})
	if err != nil {
		return nil, err
	}
	return resolveValues(cfg, cfg.Container(inst.Container), inst, w, vals), nil
}

// deferredValues are an instance's env, labels, command and entrypoint,
// evaluated: the inputs of Resolve that expressions compute.
type deferredValues [4]cty.Value

var deferredNames = [4]string{"env", "labels", "command", "entrypoint"}

func deferredOf(inst *hclspec.Instance) [4]hclspec.Deferred {
	return [4]hclspec.Deferred{inst.Env, inst.Labels, inst.Command, inst.Entrypoint}
}

// deferredRefs are the containers an instance's deferred attributes name.
func deferredRefs(inst *hclspec.Instance) []string {
	var refs []string
	for _, d := range deferredOf(inst) {
		refs = append(refs, d.Refs...)
	}
	return refs
}

// evalDeferred evaluates an instance's deferred attributes. ctx is called
// only when one of them has an expression: an attribute the configuration
// leaves out keeps its decoded value, and building the context would cost
// more than the rest of Resolve.
func evalDeferred(inst *hclspec.Instance, ctx func() *hcl.EvalContext) (deferredValues, error) {
	var vals deferredValues
	var ectx *hcl.EvalContext
	for i, d := range deferredOf(inst) {
		if d.Expr == nil {
			vals[i] = d.Value
			continue
		}
		if ectx == nil {
			ectx = ctx()
		}
		val, diags := d.Eval(ectx)
		if diags.HasErrors() {
			return vals, fmt.Errorf("%s: %s: %s", inst.Address, deferredNames[i], diags.Error())
		}
		vals[i] = val
	}
	return vals, nil
}

// resolveValues is Resolve once the deferred attributes are evaluated.
func resolveValues(cfg *hclspec.Config, ct *hclspec.Container, inst *hclspec.Instance, w *World, vals deferredValues) *Resolved {
	unknown, sensitive := map[string]bool{}, map[string]bool{}
	spec := engine.ContainerSpec{
		Name: inst.Name, Image: inst.Image, User: inst.User, WorkingDir: inst.WorkingDir,
		Hostname: inst.Hostname, Labels: map[string]string{},
	}
	env := map[string]string{}
	flattenMap(vals[0], "env.", env, unknown, sensitive)
	flattenMap(vals[1], "labels.", spec.Labels, unknown, sensitive)
	spec.Cmd = flattenList(vals[2], "command", unknown, sensitive)
	spec.Entrypoint = flattenList(vals[3], "entrypoint", unknown, sensitive)
	linkEnv(cfg, ct, w, env, unknown, &spec)
	for _, k := range sortedKeys(env) {
		spec.Env = append(spec.Env, k+"="+env[k])
	}
	spec.Labels[LabelProject] = cfg.Project
	spec.Labels[LabelContainer] = inst.Container
	spec.Labels[LabelIndex] = fmt.Sprint(inst.Index)
	fillStatic(&spec, inst, sensitive)
	r := &Resolved{Spec: spec}
	r.Attrs = Flatten(spec, unknown, sensitive)
	r.Known = true
	for _, a := range r.Attrs {
		r.Known = r.Known && !a.Unknown
	}
	if r.Known {
		r.Hash = HashAttrs(r.Attrs)
		r.Spec.Labels[LabelConfigHash] = r.Hash
	}
	return r
}

func fillStatic(spec *engine.ContainerSpec, inst *hclspec.Instance, sensitive map[string]bool) {
	for _, p := range inst.Ports {
		spec.Ports = append(spec.Ports, engine.PortBinding{ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP, HostPort: p.HostPort})
	}
	for _, v := range inst.Volumes {
		m := engine.Mount{Type: engine.MountBind, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Named || v.Source == "" {
			m.Type = engine.MountVolume
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	spec.Resources = engine.Resources{NanoCPUs: inst.Resources.MilliCPU * 1e6, Memory: inst.Resources.MemoryBytes}
	name, _ := engine.ParseRestartPolicyName(inst.Restart.Name)
	spec.Restart = engine.RestartPolicy{Name: name, MaxRetries: inst.Restart.MaxRetries}
	if inst.StopTimeout != nil {
		spec.StopTimeout = *inst.StopTimeout
	}
	spec.ReadOnly, spec.Init, spec.ShmSize = inst.ReadOnly, inst.Init, inst.ShmSize
	for _, u := range inst.Ulimits {
		spec.Ulimits = append(spec.Ulimits, engine.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	if len(inst.Sysctls) > 0 {
		spec.Sysctls = inst.Sysctls
	}
	if len(inst.ExtraHosts) > 0 {
		for _, name := range sortedKeys(inst.ExtraHosts) {
			spec.ExtraHosts = append(spec.ExtraHosts, name+":"+inst.ExtraHosts[name])
		}
		sort.Strings(spec.ExtraHosts)
	}
	if l := inst.Logging; l != nil {
		spec.LogDriver = l.Driver
		opts, marks := l.Options.UnmarkDeep()
		if len(marks) > 0 {
			sensitive["logging"] = true
		}
		if !opts.IsNull() && opts.LengthInt() > 0 {
			spec.LogOptions = map[string]string{}
			for k, v := range opts.AsValueMap() {
				spec.LogOptions[k] = v.AsString()
			}
		}
	}
	spec.CapAdd, spec.CapDrop = inst.CapAdd, inst.CapDrop
	for _, t := range inst.Tmpfs {
		if spec.Tmpfs == nil {
			spec.Tmpfs = map[string]string{}
		}
		spec.Tmpfs[t.Target] = t.Options
	}
	if h := inst.Health; h != nil {
		cmd, marks := h.Command.UnmarkDeep()
		if len(marks) > 0 {
			sensitive["health"] = true
		}
		hc := &engine.Healthcheck{Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		for it := cmd.ElementIterator(); it.Next(); {
			_, e := it.Element()
			hc.Test = append(hc.Test, e.AsString())
		}
		spec.Healthcheck = hc
	}
}

// flattenMap adds a map(string) value's elements to dst, recording unknown
// and sensitive ones under prefix+key. A wholly unknown map is recorded as
// the prefix without its dot.
func flattenMap(val cty.Value, prefix string, dst map[string]string, unknown, sensitive map[string]bool) {
	val, marks := val.Unmark()
	if !val.IsKnown() {
		unknown[strings.TrimSuffix(prefix, ".")] = true
		return
	}
	if val.IsNull() {
		return
	}
	for it := val.ElementIterator(); it.Next(); {
		k, e := it.Element()
		key := k.AsString()
		e, emarks := e.Unmark()
		if len(marks) > 0 || len(emarks) > 0 {
			sensitive[prefix+key] = true
		}
		if !e.IsKnown() {
			unknown[prefix+key] = true
			dst[key] = ""
			continue
		}
		dst[key] = e.AsString()
	}
}

func flattenList(val cty.Value, path string, unknown, sensitive map[string]bool) []string {
	val, marks := val.UnmarkDeep()
	if len(marks) > 0 {
		sensitive[path] = true
	}
	if !val.IsWhollyKnown() {
		unknown[path] = true
		return nil
	}
	if val.IsNull() {
		return nil
	}
	var out []string
	for it := val.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// linkEnv adds each link's environment variables: ALIAS_HOST, ALIAS_PORT
// and ALIAS_ADDR of the target's first instance, ALIAS_ADDRS of all of
// them, and an /etc/hosts entry for the alias when the address is an IP.
func linkEnv(cfg *hclspec.Config, ct *hclspec.Container, w *World, env map[string]string, unknown map[string]bool, spec *engine.ContainerSpec) {
	for _, l := range ct.Links {
		target := cfg.Container(l.Target)
		prefix := EnvPrefix(l.Alias)
		var addrs []string
		addrsKnown := true
		for i, ti := range target.Instances {
			host, port, ok := linkTarget(ti, l.Port, w)
			if i == 0 {
				setEnv(env, unknown, prefix+"_HOST", host, host != "")
				setEnv(env, unknown, prefix+"_PORT", fmt.Sprint(port), port > 0)
				setEnv(env, unknown, prefix+"_ADDR", fmt.Sprintf("%s:%d", host, port), ok)
				if ip, err := netip.ParseAddr(host); err == nil {
					spec.ExtraHosts = append(spec.ExtraHosts, l.Alias+":"+ip.String())
				} else if host == "" {
					unknown["extra_hosts"] = true
				}
			}
			addrsKnown = addrsKnown && ok
			addrs = append(addrs, fmt.Sprintf("%s:%d", host, port))
		}
		setEnv(env, unknown, prefix+"_ADDRS", strings.Join(addrs, ","), addrsKnown)
	}
	sort.Strings(spec.ExtraHosts)
}

// EnvPrefix turns a link alias into the prefix of its environment
// variables: upper case, dashes as underscores ("my-db" → "MY_DB").
func EnvPrefix(alias string) string {
	return strings.ToUpper(strings.ReplaceAll(alias, "-", "_"))
}

func setEnv(env map[string]string, unknown map[string]bool, key, value string, known bool) {
	if !known {
		unknown["env."+key] = true
		env[key] = ""
		return
	}
	env[key] = value
}

// linkTarget returns where a link reaches one target instance: its host's
// address and the host port of the link port (or the first TCP port).
func linkTarget(ti *hclspec.Instance, port int, w *World) (string, int, bool) {
	var p *hclspec.Port
	for i := range ti.Ports {
		cand := &ti.Ports[i]
		if cand.Protocol == "tcp" && (port == 0 || cand.ContainerPort == port) {
			p = cand
			break
		}
	}
	host := w.HostAddress[w.Placed[ti.Address]]
	if p == nil {
		return host, 0, false
	}
	hostPort := p.HostPort
	if hp, ok := w.Ports[ti.Address][p.Key()]; ok && hp > 0 {
		hostPort = hp
	}
	return host, hostPort, host != "" && hostPort > 0
}

// Flatten turns a create configuration into sorted attributes. unknown and
// sensitive name paths whose values are unknown or hidden; a wholly
// unknown map ("env") marks every element.
func Flatten(spec engine.ContainerSpec, unknown, sensitive map[string]bool) []Attr {
	var attrs []Attr
	add := func(path, value string, replace bool) {
		top, _, _ := strings.Cut(path, ".")
		attrs = append(attrs, Attr{Path: path, Value: value, Replace: replace,
			Unknown: unknown[path] || unknown[top], Sensitive: sensitive[path] || sensitive[top]})
	}
	add("image", spec.Image, true)
	if spec.Cmd != nil || unknown["command"] {
		add("command", quoteList(spec.Cmd), true)
	}
	if spec.Entrypoint != nil || unknown["entrypoint"] {
		add("entrypoint", quoteList(spec.Entrypoint), true)
	}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		add("env."+k, v, true)
	}
	for _, k := range sortedKeys(spec.Labels) {
		if !strings.HasPrefix(k, hclspec.LabelPrefix) {
			add("labels."+k, spec.Labels[k], true)
		}
	}
	for _, top := range []string{"env", "labels"} {
		if unknown[top] {
			add(top, "", true)
		}
	}
	if len(spec.Ports) > 0 {
		add("ports", formatPorts(spec.Ports), true)
	}
	if len(spec.Mounts) > 0 {
		add("volumes", formatMounts(spec.Mounts), true)
	}
	if len(spec.ExtraHosts) > 0 || unknown["extra_hosts"] {
		add("extra_hosts", strings.Join(spec.ExtraHosts, ", "), true)
	}
	for _, s := range []struct{ path, v string }{{"user", spec.User}, {"working_dir", spec.WorkingDir}, {"hostname", spec.Hostname}} {
		if s.v != "" {
			add(s.path, s.v, true)
		}
	}
	if spec.Healthcheck != nil {
		add("health", formatHealth(spec.Healthcheck), true)
	}
	if spec.StopTimeout > 0 {
		add("stop_timeout", spec.StopTimeout.String(), true)
	}
	// Absent when not declared, so that configurations written before
	// these attributes existed keep their config hash.
	for _, b := range []struct {
		path string
		on   bool
	}{{"read_only", spec.ReadOnly}, {"init", spec.Init}} {
		if b.on {
			add(b.path, "true", true)
		}
	}
	if len(spec.CapAdd) > 0 {
		add("cap_add", quoteList(spec.CapAdd), true)
	}
	if len(spec.CapDrop) > 0 {
		add("cap_drop", quoteList(spec.CapDrop), true)
	}
	if len(spec.Tmpfs) > 0 {
		add("tmpfs", formatTmpfs(spec.Tmpfs), true)
	}
	if spec.ShmSize > 0 {
		add("shm_size", hclspec.FormatBytes(spec.ShmSize), true)
	}
	if spec.LogDriver != "" {
		add("logging", formatLogging(spec.LogDriver, spec.LogOptions), true)
	}
	if len(spec.Ulimits) > 0 {
		var parts []string
		for _, u := range spec.Ulimits {
			parts = append(parts, fmt.Sprintf("%s = \"%d:%d\"", u.Name, u.Soft, u.Hard))
		}
		add("ulimits", "{"+strings.Join(parts, ", ")+"}", true)
	}
	if len(spec.Sysctls) > 0 {
		add("sysctls", formatStringMap(spec.Sysctls), true)
	}
	res := spec.Resources
	if cpu := res.MilliCPUs(); cpu > 0 {
		add("resources.cpu", hclspec.FormatMilliCPU(cpu), false)
	}
	if mem := res.MemoryBytes(); mem > 0 {
		add("resources.memory", hclspec.FormatBytes(mem), false)
	}
	restart := spec.Restart.Name.String()
	if spec.Restart.MaxRetries > 0 {
		restart += fmt.Sprintf(":%d", spec.Restart.MaxRetries)
	}
	add("restart", restart, false)
	sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].Path < attrs[j].Path })
	return attrs
}

// HashAttrs is the config hash: SHA-256 over the attributes that need a
// re-create, so that values Docker fills in, limits and the restart policy
// (which change in place) never cause a replace.
func HashAttrs(attrs []Attr) string {
	h := sha256.New()
	for _, a := range attrs {
		if a.Replace {
			fmt.Fprintf(h, "%s=%q\n", a.Path, a.Value)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func formatPorts(ports []engine.PortBinding) string {
	var out []string
	for _, p := range ports {
		s := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		if p.HostPort > 0 {
			s = fmt.Sprintf("%d:%s", p.HostPort, s)
		}
		if p.HostIP != "" {
			s = p.HostIP + ":" + s
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func formatMounts(mounts []engine.Mount) string {
	var out []string
	for _, m := range mounts {
		s := m.Target
		if m.Source != "" {
			s = m.Source + ":" + s
		}
		if m.ReadOnly {
			s += ":ro"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func formatLogging(driver string, opts map[string]string) string {
	if len(opts) == 0 {
		return driver
	}
	return driver + " " + formatStringMap(opts)
}

// formatStringMap writes a map as {"key" = "value", …}, sorted by key.
func formatStringMap(m map[string]string) string {
	var kv []string
	for _, k := range sortedKeys(m) {
		kv = append(kv, fmt.Sprintf("%q = %q", k, m[k]))
	}
	return "{" + strings.Join(kv, ", ") + "}"
}

func formatTmpfs(tmpfs map[string]string) string {
	var out []string
	for _, target := range sortedKeys(tmpfs) {
		s := target
		if o := tmpfs[target]; o != "" {
			s += ":" + o
		}
		out = append(out, s)
	}
	return quoteList(out)
}

func formatHealth(h *engine.Healthcheck) string {
	retries := "default"
	if h.Retries > 0 {
		retries = fmt.Sprint(h.Retries)
	}
	return fmt.Sprintf("%s every %s, timeout %s, %s retries, start period %s",
		quoteList(h.Test), durOrDefault(h.Interval), durOrDefault(h.Timeout), retries, durOrDefault(h.StartPeriod))
}

func durOrDefault(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

package hclspec

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// instanceType is the type of one instance in expressions.
var instanceType = cty.Object(map[string]cty.Type{
	"name": cty.String, "index": cty.Number, "host": cty.String,
	"host_address": cty.String, "ports": cty.Map(cty.Number), "address": cty.String,
})

// ContainerValuesOf is ContainerValues for the named containers only: the
// object has just those attributes, which is all an expression that refers
// only to them needs, at a cost that does not grow with the configuration.
func (c *Config) ContainerValuesOf(names []string, lookup func(addr string) InstanceValues) cty.Value {
	obj := map[string]cty.Value{}
	for _, name := range names {
		if ct := c.Container(name); ct != nil {
			obj[name] = c.containerValue(ct, lookup)
		}
	}
	return cty.ObjectVal(obj)
}

func (c *Config) containerValue(ct *Container, lookup func(string) InstanceValues) cty.Value {
	return c.instancesValue(ct, ct.Instances, lookup)
}

// instancesValue is containerValue with the decoded instances given: nil
// before decoding, when the ports of every instance are still unknown.
func (c *Config) instancesValue(ct *Container, instances []*Instance, lookup func(string) InstanceValues) cty.Value {
	vals := make([]cty.Value, ct.Count)
	for i := range vals {
		var iv InstanceValues
		addr := instanceAddress(ct.Name, i, ct.Counted)
		if lookup != nil {
			iv = lookup(addr)
		}
		var ports []Port
		if i < len(instances) {
			ports = instances[i].Ports
		}
		vals[i] = instanceObject(c.Project+"-"+ct.Name+"-"+itoa(i), i, iv, ports, i < len(instances))
	}
	if !ct.Counted {
		if len(vals) == 0 {
			return cty.UnknownVal(instanceType)
		}
		return vals[0]
	}
	if len(vals) == 0 {
		return cty.EmptyTupleVal
	}
	return cty.TupleVal(vals)
}

// instanceObject builds one instance's value. portsKnown says whether the
// declared ports are decoded yet; before that the whole ports map is
// unknown.
func instanceObject(name string, index int, iv InstanceValues, ports []Port, portsKnown bool) cty.Value {
	unknownStr := cty.UnknownVal(cty.String)
	host, hostAddr := unknownStr, unknownStr
	if iv.Host != "" {
		host = cty.StringVal(iv.Host)
	}
	if iv.HostAddress != "" {
		hostAddr = cty.StringVal(iv.HostAddress)
	}
	portsVal := cty.UnknownVal(cty.Map(cty.Number))
	address := unknownStr
	if portsKnown {
		m := map[string]cty.Value{}
		first := cty.NilVal
		for _, p := range ports {
			v := cty.UnknownVal(cty.Number)
			if hp, ok := iv.Ports[p.Key()]; ok && hp > 0 {
				v = cty.NumberIntVal(int64(hp))
			} else if p.HostPort > 0 {
				v = cty.NumberIntVal(int64(p.HostPort))
			}
			if first == cty.NilVal {
				first = v
			}
			m[p.Key()] = v
		}
		portsVal = cty.MapValEmpty(cty.Number)
		if len(m) > 0 {
			portsVal = cty.MapVal(m)
		}
		switch {
		case iv.HostAddress == "":
		case first == cty.NilVal:
			address = hostAddr
		case first.IsKnown():
			address = cty.StringVal(iv.HostAddress + ":" + first.AsBigFloat().Text('f', 0))
		}
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal(name), "index": cty.NumberIntVal(int64(index)),
		"host": host, "host_address": hostAddr, "ports": portsVal, "address": address,
	})
}

func instanceAddress(container string, index int, counted bool) string {
	if counted {
		return fmt.Sprintf("%s[%d]", container, index)
	}
	return container
}

// EvalContext returns the context in which an instance's deferred
// attributes are evaluated, with containers as the value of container.*
// (see ContainerValues).
func (c *Config) EvalContext(inst *Instance, containers cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{"var": c.varsVal, "local": c.localsVal, "container": containers}
	if ct := c.Container(inst.Container); ct != nil && ct.Counted {
		vars["count"] = cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(inst.Index))})
	}
	return &hcl.EvalContext{Variables: vars, Functions: c.funcs}
}

// Eval evaluates the deferred expression again in ctx and converts it to
// the type the decode-time value had.
func (d Deferred) Eval(ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if d.Expr == nil {
		return d.Value, nil
	}
	val, diags := d.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	return convertLike(val, d.Value.Type(), d.Expr.Range())
}

// The values of absent deferred attributes, shared by every instance (cty
// values are immutable): one per instance would cost a map and a type each.
var (
	emptyStringMap = cty.MapValEmpty(cty.String)
	nullStringList = cty.NullVal(cty.List(cty.String))
)

func (d *decoder) decodeInstance(decl *containerDecl, i int, ctx *hcl.EvalContext) (*Instance, bool) {
	c := decl.c
	before := countErrors(d.diags)
	ictx := ctx
	if c.Counted {
		ictx = ctx.NewChild()
		ictx.Variables = map[string]cty.Value{
			"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(i))}),
		}
	}
	inst := &Instance{
		Address: instanceAddress(c.Name, i, c.Counted), Container: c.Name, Index: i,
		Name:    d.cfg.Project + "-" + c.Name + "-" + itoa(i),
		Restart: RestartPolicy{Name: "no"},
		Env:     Deferred{Value: emptyStringMap}, Labels: Deferred{Value: emptyStringMap},
		Command: Deferred{Value: nullStringList}, Entrypoint: Deferred{Value: nullStringList},
	}
	ev := &instanceEval{d: d, decl: decl, ctx: ictx, inst: inst}
	for _, a := range attrsInOrder(decl.content.Attributes) {
		ev.attr(a)
	}
	if a := decl.content.Attributes["tmpfs"]; a != nil {
		ev.checkMountTargets(a.Expr.Range().Ptr())
	}
	for _, b := range decl.content.Blocks {
		switch b.Type {
		case "resources":
			scope := refScope{count: c.Counted, what: "resources"}
			if r := d.decodeResources(b, ictx, scope); r != nil {
				inst.Resources = *r
			}
		case "health":
			inst.Health = d.decodeHealth(b, ictx, c.Counted)
		case "logging":
			inst.Logging = d.decodeLogging(b, ictx, c.Counted)
		}
	}
	return inst, countErrors(d.diags) == before
}

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// instanceEval evaluates one instance's attributes.
type instanceEval struct {
	d    *decoder
	decl *containerDecl
	ctx  *hcl.EvalContext
	inst *Instance
}

func (ev *instanceEval) attr(a *hcl.Attribute) {
	d, inst := ev.d, ev.inst
	switch a.Name {
	case "count", "depends_on", "image_source":
		return
	case "env", "command", "entrypoint", "labels":
		ev.deferred(a)
		return
	}
	val, diags := a.Expr.Value(ev.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	switch a.Name {
	case "image":
		if s, ok := d.toString(a, val); ok {
			if err := checkImageRef(s); err != nil {
				d.errorf(a.Expr.Range().Ptr(), "Invalid image reference", "%s", err)
			}
			inst.Image = s
		}
	case "ports":
		ev.ports(a, val)
	case "volumes":
		ev.volumes(a, val)
	case "restart":
		if s, ok := d.toString(a, val); ok {
			r, err := ParseRestart(s)
			if err != nil {
				d.errorf(a.Expr.Range().Ptr(), "Invalid restart policy", "%s.", capitalize(err.Error()))
			}
			inst.Restart = r
		}
	case "stop_timeout":
		if s, ok := d.toString(a, val); ok {
			if dur, err := ParseDuration(s); err != nil {
				d.errorf(a.Expr.Range().Ptr(), "Invalid duration", "stop_timeout %s.", err)
			} else {
				inst.StopTimeout = &dur
			}
		}
	case "user":
		inst.User, _ = d.toString(a, val)
	case "working_dir":
		if s, ok := d.toString(a, val); ok {
			if !path.IsAbs(s) {
				d.errorf(a.Expr.Range().Ptr(), "Invalid working directory", "working_dir %q must be an absolute path in the container.", s)
			}
			inst.WorkingDir = s
		}
	case "read_only":
		inst.ReadOnly, _ = d.toBool(a, val)
	case "init":
		inst.Init, _ = d.toBool(a, val)
	case "cap_add":
		inst.CapAdd = d.capabilityList(a, val)
	case "cap_drop":
		inst.CapDrop = d.capabilityList(a, val)
	case "tmpfs":
		ev.tmpfs(a, val)
	case "ulimits":
		ev.ulimits(a, val)
	case "sysctls":
		ev.sysctls(a, val)
	case "extra_hosts":
		ev.extraHosts(a, val)
	case "shm_size":
		inst.ShmSize = d.memoryValue(a, val)
	case "hostname":
		if s, ok := d.toString(a, val); ok {
			if !hostnamePattern.MatchString(s) {
				d.errorf(a.Expr.Range().Ptr(), "Invalid hostname", "hostname %q must be up to 63 letters, digits and dashes, not starting or ending with a dash.", s)
			}
			inst.Hostname = s
		}
	}
}

var hostnamePattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

func (ev *instanceEval) deferred(a *hcl.Attribute) {
	d, inst := ev.d, ev.inst
	val, diags := a.Expr.Value(ev.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	ty := cty.Map(cty.String)
	if a.Name == "command" || a.Name == "entrypoint" {
		ty = cty.List(cty.String)
	}
	conv, ok := d.convertAttr(a, val, ty, allowUnknown|allowSensitive)
	if !ok {
		return
	}
	if ty.IsMapType() && conv.HasMark(Sensitive) {
		// A mark on the map as a whole means its keys may come from a
		// secret ({ (var.token) = "x" }, jsondecode(var.secret)); plans,
		// forced-by lists and the state name every key.
		d.errorf(a.Expr.Range().Ptr(), "Sensitive value not allowed",
			"The names in %s are derived from a sensitive value, and plans show names. Keep the names plain and mark only the values: %s = { NAME = var.secret }; for a sensitive map variable, { for k in nonsensitive(keys(var.m)) : k => var.m[k] }.", a.Name, a.Name)
		return
	}
	def := Deferred{Value: conv, Expr: a.Expr, Refs: ev.decl.refs[a.Name]}
	switch a.Name {
	case "env":
		ev.checkKeys(a, conv, checkEnvName)
		inst.Env = def
	case "labels":
		ev.checkKeys(a, conv, checkLabelKey)
		inst.Labels = def
	case "command":
		inst.Command = def
	case "entrypoint":
		inst.Entrypoint = def
	}
}

func (ev *instanceEval) checkKeys(a *hcl.Attribute, m cty.Value, check func(string) error) {
	m, _ = m.Unmark()
	if !m.IsKnown() {
		return
	}
	for it := m.ElementIterator(); it.Next(); {
		k, _ := it.Element()
		if err := check(k.AsString()); err != nil {
			ev.d.errorf(a.Expr.Range().Ptr(), "Invalid "+a.Name+" key", "%s", err)
		}
	}
}

func checkEnvName(k string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("environment variable name %q must be non-empty and contain no \"=\"", k)
	}
	return nil
}

// LabelPrefix prefixes the labels dockplan sets on the containers it
// manages; configurations may not set labels with it.
const LabelPrefix = "dockplan."

func checkLabelKey(k string) error {
	if k == "" {
		return fmt.Errorf("a label key must not be empty")
	}
	if strings.HasPrefix(k, LabelPrefix) {
		return fmt.Errorf("label %q uses the prefix %q, which dockplan keeps for its own labels", k, LabelPrefix)
	}
	return nil
}

func (ev *instanceEval) ports(a *hcl.Attribute, val cty.Value) {
	d := ev.d
	specs, ok := d.toStringList(a, val)
	if !ok {
		return
	}
	seen := map[string]bool{}
	seenHost := map[string]bool{}
	for _, s := range specs {
		p, err := ParsePort(s)
		if err != nil {
			d.errorf(a.Expr.Range().Ptr(), "Invalid port", "%s.", capitalize(err.Error()))
			continue
		}
		p.Range = a.Expr.Range()
		if seen[p.Key()] {
			d.errorf(a.Expr.Range().Ptr(), "Duplicate port", "Container port %s is listed twice.", p.Key())
			continue
		}
		seen[p.Key()] = true
		hk := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
		if p.HostPort > 0 && seenHost[hk] {
			d.errorf(a.Expr.Range().Ptr(), "Duplicate host port", "Host port %s is published twice by one container.", hk)
			continue
		}
		seenHost[hk] = true
		ev.inst.Ports = append(ev.inst.Ports, p)
	}
}

func (ev *instanceEval) volumes(a *hcl.Attribute, val cty.Value) {
	d := ev.d
	specs, ok := d.toStringList(a, val)
	if !ok {
		return
	}
	targets := map[string]bool{}
	for _, s := range specs {
		v, err := ParseVolume(s)
		if err != nil {
			d.errorf(a.Expr.Range().Ptr(), "Invalid volume", "%s.", capitalize(err.Error()))
			continue
		}
		if targets[v.Target] {
			d.errorf(a.Expr.Range().Ptr(), "Duplicate volume target", "Two volumes mount at %s.", v.Target)
			continue
		}
		targets[v.Target] = true
		ev.inst.Volumes = append(ev.inst.Volumes, v)
	}
}

package hclspec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var healthSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "command", Required: true}, {Name: "interval"}, {Name: "timeout"},
		{Name: "retries"}, {Name: "start_period"},
	},
}

func (d *decoder) decodeHealth(b *hcl.Block, ctx *hcl.EvalContext, counted bool) *Health {
	content, diags := b.Body.Content(healthSchema)
	d.diags = append(d.diags, diags...)
	scope := refScope{count: counted, what: "health"}
	h := &Health{Command: cty.NullVal(cty.List(cty.String))}
	for _, a := range attrsInOrder(content.Attributes) {
		val, _, ok := d.eval(a.Expr, ctx, scope)
		if !ok {
			continue
		}
		switch a.Name {
		case "command":
			if v, ok := d.convertAttr(a, val, cty.List(cty.String), allowSensitive); ok {
				h.Command = v
				d.checkHealthCommand(a, v)
			}
		case "retries":
			n, _ := d.toInt(a, val, 0, 100)
			h.Retries = int(n)
		default:
			s, ok := d.toString(a, val)
			if !ok {
				continue
			}
			dur, err := ParseDuration(s)
			if err != nil {
				d.errorf(a.Expr.Range().Ptr(), "Invalid duration", "%s %s.", a.Name, err)
				continue
			}
			switch a.Name {
			case "interval":
				h.Interval = dur
			case "timeout":
				h.Timeout = dur
			case "start_period":
				h.StartPeriod = dur
			}
		}
	}
	return h
}

func (d *decoder) checkHealthCommand(a *hcl.Attribute, v cty.Value) {
	v, _ = v.UnmarkDeep()
	if v.LengthInt() == 0 {
		d.errorf(a.Expr.Range().Ptr(), "Empty health command", `Write ["CMD", "program", "arg"], ["CMD-SHELL", "shell command"] or ["NONE"].`)
		return
	}
	if _, ok := nullElement(v); !ok {
		return // reported by convertAttr
	}
	first := v.Index(cty.NumberIntVal(0)).AsString()
	switch first {
	case "CMD", "CMD-SHELL":
		if v.LengthInt() < 2 {
			d.errorf(a.Expr.Range().Ptr(), "Incomplete health command", "%s must be followed by the command to run.", first)
		}
	case "NONE":
	default:
		d.errorf(a.Expr.Range().Ptr(), "Invalid health command",
			`The health command starts with "CMD" (run a program), "CMD-SHELL" (run through the image's shell) or "NONE", as Docker's HEALTHCHECK does: write ["CMD", %q, ...].`, first)
	}
}

var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainPart    = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$`)
	tagPattern    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)
)

// checkImageRef checks an image reference with Docker's grammar:
// [domain[:port]/]path[:tag][@digest], path components in lowercase.
func checkImageRef(ref string) error {
	bad := func(why string) error {
		return fmt.Errorf("%q is not a valid image reference: %s", ref, why)
	}
	if ref == "" {
		return bad("it is empty")
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest && !digestPattern.MatchString(digest) {
		return bad("the digest must look like sha256:<64 hex digits>")
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		if !tagPattern.MatchString(name[i+1:]) {
			return bad("a tag has up to 128 letters, digits, _ . and -")
		}
		name = name[:i]
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if !domainPart.MatchString(parts[0]) {
			return bad(fmt.Sprintf("%q is not a valid registry address", parts[0]))
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if !pathComponent.MatchString(p) {
			if strings.ToLower(p) != p {
				return bad("repository names must be lowercase")
			}
			return bad(fmt.Sprintf("%q is not a valid name component (lowercase letters, digits, and . _ - between them)", p))
		}
	}
	return nil
}

// convertLike converts a re-evaluated deferred value to the decode-time
// type, keeping marks.
func convertLike(val cty.Value, ty cty.Type, rng hcl.Range) (cty.Value, hcl.Diagnostics) {
	if ty == cty.NilType || ty == cty.DynamicPseudoType {
		return val, nil
	}
	out, err := convert.Convert(val, ty)
	if err != nil {
		return cty.DynamicVal, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Incorrect value type",
			Detail: fmt.Sprintf("The value is not a %s: %s.", ty.FriendlyName(), err), Subject: rng.Ptr(),
		}}
	}
	return out, nil
}

// checkDependencies fills each container's Deps and reports dependency
// cycles, printing each cycle once.
func (d *decoder) checkDependencies() {
	byName := map[string]*Container{}
	for _, c := range d.cfg.Containers {
		byName[c.Name] = c
		deps := map[string]bool{}
		for _, l := range c.Links {
			deps[l.Target] = true
		}
		for _, n := range c.DependsOn {
			deps[n] = true
		}
		for _, inst := range c.Instances[:min(1, len(c.Instances))] {
			for _, def := range []Deferred{inst.Env, inst.Command, inst.Entrypoint, inst.Labels} {
				for _, r := range def.Refs {
					deps[r] = true
				}
			}
		}
		delete(deps, c.Name)
		c.Deps = sortedKeys(deps)
	}
	state := map[string]int{}
	var stack []string
	var visit func(c *Container)
	visit = func(c *Container) {
		state[c.Name] = 1
		stack = append(stack, c.Name)
		for _, dep := range c.Deps {
			next := byName[dep]
			switch {
			case next == nil || state[dep] == 2:
			case state[dep] == 1:
				d.reportCycle(stack, dep, byName)
			default:
				visit(next)
			}
		}
		stack = stack[:len(stack)-1]
		state[c.Name] = 2
	}
	for _, c := range d.cfg.Containers {
		if state[c.Name] == 0 {
			visit(c)
		}
	}
}

func (d *decoder) reportCycle(stack []string, back string, byName map[string]*Container) {
	start := 0
	for i, n := range stack {
		if n == back {
			start = i
		}
	}
	cycle := append(append([]string{}, stack[start:]...), back)
	c := byName[cycle[0]]
	d.errorf(c.DeclRange.Ptr(), "Dependency cycle",
		"These containers depend on each other in a loop (through links, depends_on or container.* references): %s. No order can start them; remove one of these dependencies.",
		strings.Join(cycle, " → "))
}

var outputSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "value", Required: true}, {Name: "description"}, {Name: "sensitive"}},
}

func (d *decoder) decodeOutputs(blocks []*hcl.Block) {
	seen := map[string]*Output{}
	ctx := d.baseCtx()
	for _, b := range blocks {
		o := &Output{Name: b.Labels[0], DeclRange: b.DefRange}
		if !identifier.MatchString(o.Name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid output name",
				"%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", o.Name)
			continue
		}
		if prev := seen[o.Name]; prev != nil {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate output",
				"An output named %q was already declared at %s. Output names must be unique.", o.Name, prev.DeclRange)
			continue
		}
		seen[o.Name] = o
		content, diags := b.Body.Content(outputSchema)
		d.diags = append(d.diags, diags...)
		if a, ok := content.Attributes["description"]; ok {
			if val, ok := d.evalStatic(a.Expr, "description"); ok {
				o.Description, _ = d.toString(a, val)
			}
		}
		if a, ok := content.Attributes["sensitive"]; ok {
			if val, ok := d.evalStatic(a.Expr, "sensitive"); ok {
				o.Sensitive, _ = d.toBool(a, val)
			}
		}
		if a, ok := content.Attributes["value"]; ok {
			// Only the containers the value names: the whole container
			// object holds every instance of the configuration.
			ctx.Variables["container"] = d.cfg.ContainerValuesOf(containerRefNames(a.Expr), nil)
			val, refs, ok := d.eval(a.Expr, ctx, refScope{container: true, what: "an output"})
			if !ok {
				continue
			}
			o.Value = Deferred{Value: val, Expr: a.Expr, Refs: refs}
			if val.HasMarkDeep(Sensitive) && !o.Sensitive {
				d.errorf(a.Expr.Range().Ptr(), "Output refers to sensitive values",
					"Output %q is derived from a sensitive value. Add sensitive = true to the output block to confirm it should be hidden, or wrap the value in nonsensitive() if it is safe to show.", o.Name)
			}
		}
		d.cfg.Outputs = append(d.cfg.Outputs, o)
	}
}

// containerRefNames names the containers expr refers to as container.NAME,
// unchecked: d.eval rejects the bad references before evaluating.
func containerRefNames(expr hcl.Expression) []string {
	var names []string
	for _, trav := range expr.Variables() {
		if trav.RootName() != "container" || len(trav) < 2 {
			continue
		}
		if a, ok := trav[1].(hcl.TraverseAttr); ok {
			names = append(names, a.Name)
		}
	}
	return names
}

// checkCross runs the checks that need the whole configuration: fixed host
// ports on a host that only one placement allows, link ports, and
// placement labels no host declares.
func (d *decoder) checkCross() {
	d.checkHostPorts()
	d.checkLinkPorts()
	hostLabels := map[string]bool{}
	for _, h := range d.cfg.Hosts {
		for k := range h.Labels {
			hostLabels[k] = true
		}
	}
	for _, pl := range d.placementLabelAttrs {
		for _, k := range sortedKeys(pl.labels) {
			if !hostLabels[k] {
				d.warnf(pl.attr.Expr.Range().Ptr(), "Placement label no host declares",
					"No host block declares the label %q, so no host can match it and the plan will fail to place this container. Add the label to a host's labels, or fix the key.", k)
			}
		}
	}
}

// checkHostPorts reports two instances that must run on the same host and
// publish the same fixed host port.
func (d *decoder) checkHostPorts() {
	type owner struct {
		addr string
		rng  hcl.Range
		ip   string
	}
	used := map[string][]owner{}
	for _, c := range d.cfg.Containers {
		hosts := c.Placement.Hosts
		if len(hosts) == 0 && len(d.cfg.Hosts) == 1 {
			hosts = []string{d.cfg.Hosts[0].Name}
		}
		if len(hosts) != 1 {
			continue
		}
		for _, inst := range c.Instances {
			for _, p := range inst.Ports {
				if p.HostPort == 0 {
					continue
				}
				key := fmt.Sprintf("%s %d/%s", hosts[0], p.HostPort, p.Protocol)
				for _, o := range used[key] {
					if o.ip == "" || p.HostIP == "" || o.ip == p.HostIP {
						d.errorf(p.Range.Ptr(), "Duplicate host port",
							"%s and %s must both run on host %q and both publish host port %d/%s; only one can. Pick another host port, write only the container port to let Docker choose, or allow more hosts.",
							o.addr, inst.Address, hosts[0], p.HostPort, p.Protocol)
						break
					}
				}
				used[key] = append(used[key], owner{addr: inst.Address, rng: p.Range, ip: p.HostIP})
			}
		}
	}
}

// checkLinkPorts checks that each link can reach its target through a
// published port.
func (d *decoder) checkLinkPorts() {
	for _, c := range d.cfg.Containers {
		for _, l := range c.Links {
			t := d.cfg.Container(l.Target)
			if t == nil || len(t.Instances) == 0 {
				continue
			}
			ports := t.Instances[0].Ports
			if !hasTCP(ports) {
				d.errorf(l.DeclRange.Ptr(), "Link target publishes no port",
					"Container %q links to %q, which publishes no TCP port; links across hosts go through a published TCP port. Add ports to %q.", c.Name, l.Target, l.Target)
				continue
			}
			if l.Port == 0 {
				continue
			}
			var keys []string
			found := false
			for _, p := range ports {
				keys = append(keys, p.Key())
				found = found || (p.ContainerPort == l.Port && p.Protocol == "tcp")
			}
			if !found {
				sort.Strings(keys)
				d.errorf(l.DeclRange.Ptr(), "Link port not published",
					"Container %q links to port %d of %q, which publishes only %s.", c.Name, l.Port, l.Target, strings.Join(keys, ", "))
			}
		}
	}
}

func hasTCP(ports []Port) bool {
	for _, p := range ports {
		if p.Protocol == "tcp" {
			return true
		}
	}
	return false
}

package hclspec

import (
	"fmt"
	"regexp"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var containerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "image", Required: true}, {Name: "count"}, {Name: "env"}, {Name: "ports"},
		{Name: "volumes"}, {Name: "restart"}, {Name: "command"}, {Name: "entrypoint"},
		{Name: "user"}, {Name: "working_dir"}, {Name: "labels"}, {Name: "stop_timeout"},
		{Name: "hostname"}, {Name: "depends_on"}, {Name: "image_source"},
		{Name: "read_only"}, {Name: "init"}, {Name: "cap_add"}, {Name: "cap_drop"}, {Name: "tmpfs"},
		{Name: "shm_size"}, {Name: "ulimits"}, {Name: "sysctls"}, {Name: "extra_hosts"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "resources"}, {Type: "placement"}, {Type: "health"}, {Type: "logging"},
		{Type: "link", LabelNames: []string{"container"}},
	},
}

// deferredAttrs may refer to container.* values; they are evaluated again
// once placement and apply make those values known.
var deferredAttrs = map[string]bool{"env": true, "command": true, "entrypoint": true, "labels": true}

var containerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// containerDecl is a container block between the decoding passes.
type containerDecl struct {
	c       *Container
	block   *hcl.Block
	content *hcl.BodyContent
	// refs are the container names each attribute refers to.
	refs map[string][]string
	// badRefs is set when an attribute made an invalid reference.
	badRefs bool
}

// decodeContainers decodes container blocks in three passes: names and
// counts (so that container.* has a shape), then placement, links and
// instances, then the dependency graph.
func (d *decoder) decodeContainers(blocks []*hcl.Block) {
	seen := map[string]*hcl.Block{}
	var decls []*containerDecl
	for _, b := range blocks {
		name := b.Labels[0]
		if prev := seen[name]; prev != nil {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate container",
				"A container named %q was already declared at %s. Container names must be unique.", name, prev.DefRange)
			continue
		}
		seen[name] = b
		if !containerName.MatchString(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid container name",
				"%q is not a valid container name: use up to 63 lowercase letters, digits, underscores and dashes, starting with a letter.", name)
			continue
		}
		d.containerNames = append(d.containerNames, name)
		decls = append(decls, &containerDecl{c: &Container{Name: name, Count: 1, DeclRange: b.DefRange}, block: b})
	}
	for _, decl := range decls {
		content, diags := decl.block.Body.Content(containerSchema)
		d.diags = append(d.diags, diags...)
		decl.content = content
		d.checkSingleBlocks(content)
		d.decodeCount(decl)
		d.cfg.Containers = append(d.cfg.Containers, decl.c)
	}
	// At decode time only names and indexes are known: container.* is what
	// it is before any instance is decoded (see declaredValues).
	declared := map[string]cty.Value{}
	for _, decl := range decls {
		d.decodeContainer(decl, declared)
	}
	d.checkDependencies()
}

func (d *decoder) decodeCount(decl *containerDecl) {
	a, ok := decl.content.Attributes["count"]
	if !ok {
		return
	}
	decl.c.Counted = true
	scope := refScope{what: "count"}
	// On a bad count, one instance is still decoded so that the block's
	// other errors are reported too; the configuration is rejected anyway.
	val, _, ok := d.eval(a.Expr, d.baseCtx(), scope)
	if !ok {
		return
	}
	n, ok := d.toInt(a, val, 0, MaxCount)
	if !ok {
		return
	}
	decl.c.Count = int(n)
}

func (d *decoder) decodeContainer(decl *containerDecl, declared map[string]cty.Value) {
	c := decl.c
	content := decl.content
	decl.refs = map[string][]string{}
	for _, a := range attrsInOrder(content.Attributes) {
		if a.Name == "count" || a.Name == "depends_on" {
			continue
		}
		scope := refScope{container: deferredAttrs[a.Name], count: c.Counted, self: c.Name,
			what: fmt.Sprintf("%s of container %q", a.Name, c.Name)}
		refs, ok := d.checkRefs(a.Expr, scope)
		decl.refs[a.Name] = refs
		decl.badRefs = decl.badRefs || !ok
	}
	c.ImageSource = "registry"
	if a, ok := content.Attributes["image_source"]; ok {
		if val, ok := d.evalStatic(a.Expr, "image_source"); ok {
			if s, ok := d.toString(a, val); ok {
				if s != "registry" && s != "local" {
					d.errorf(a.Expr.Range().Ptr(), "Invalid image source",
						"image_source must be \"registry\" (hosts pull the image) or \"local\" (dockplan copies it from the engine of the machine it runs on), not %q.", s)
				}
				c.ImageSource = s
			}
		}
	}
	if a, ok := content.Attributes["depends_on"]; ok {
		c.DependsOn = d.decodeDependsOn(a, c.Name)
	}
	for _, b := range content.Blocks {
		switch b.Type {
		case "placement":
			d.decodePlacement(b, c)
		case "link":
			if l, ok := d.decodeLink(b, c); ok {
				c.Links = append(c.Links, l)
			}
		}
	}
	if decl.badRefs {
		return
	}
	ctx := d.baseCtx()
	ctx.Variables["container"] = d.declaredValues(decl, declared)
	for i := 0; i < c.Count; i++ {
		inst, ok := d.decodeInstance(decl, i, ctx)
		if !ok {
			// The other instances would repeat the same errors.
			return
		}
		c.Instances = append(c.Instances, inst)
	}
}

// declaredValues is container.* for decoding one container's instances:
// the containers its attributes refer to (all references were checked, so
// no expression reaches another), each as it is before any instance is
// decoded: names and indexes, hosts and ports unknown. declared caches
// them across containers. Building only these, and not every instance of
// the configuration, keeps memory linear in the instances referred to.
func (d *decoder) declaredValues(decl *containerDecl, declared map[string]cty.Value) cty.Value {
	obj := map[string]cty.Value{}
	for _, refs := range decl.refs {
		for _, name := range refs {
			ct := d.cfg.Container(name)
			if ct == nil {
				continue
			}
			v, ok := declared[name]
			if !ok {
				v = d.cfg.instancesValue(ct, nil, nil)
				declared[name] = v
			}
			obj[name] = v
		}
	}
	return cty.ObjectVal(obj)
}

func (d *decoder) decodeDependsOn(a *hcl.Attribute, self string) []string {
	exprs, diags := hcl.ExprList(a.Expr)
	d.diags = append(d.diags, diags...)
	seen := map[string]bool{}
	for _, e := range exprs {
		trav, diags := hcl.AbsTraversalForExpr(e)
		name := ""
		if !diags.HasErrors() && len(trav) == 2 && trav.RootName() == "container" {
			if ta, ok := trav[1].(hcl.TraverseAttr); ok {
				name = ta.Name
			}
		}
		if name == "" {
			d.errorf(e.Range().Ptr(), "Invalid depends_on entry",
				"Each entry of depends_on names a container as container.NAME, such as depends_on = [container.db].")
			continue
		}
		if !d.checkDeclared(e.Range().Ptr(), name, "container", "container", d.containerNames, "") {
			continue
		}
		if name == self {
			d.errorf(e.Range().Ptr(), "Self-referential container", "Container %q cannot depend on itself.", self)
			continue
		}
		seen[name] = true
	}
	return sortedKeys(seen)
}

var linkSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "alias"}, {Name: "port"}},
}

var aliasName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,62}$`)

func (d *decoder) decodeLink(b *hcl.Block, c *Container) (Link, bool) {
	l := Link{Target: b.Labels[0], Alias: b.Labels[0], DeclRange: b.DefRange}
	content, diags := b.Body.Content(linkSchema)
	d.diags = append(d.diags, diags...)
	ok := d.checkDeclared(b.LabelRanges[0].Ptr(), l.Target, "container", "container", d.containerNames, "")
	if ok && l.Target == c.Name {
		d.errorf(b.LabelRanges[0].Ptr(), "Self-referential container", "Container %q cannot link to itself.", c.Name)
		ok = false
	}
	if a, has := content.Attributes["alias"]; has {
		if val, good := d.evalStatic(a.Expr, "A link alias"); good {
			if s, good := d.toString(a, val); good {
				if !aliasName.MatchString(s) {
					d.errorf(a.Expr.Range().Ptr(), "Invalid link alias",
						"%q is not a valid alias: it names environment variables and a host name, so use letters, digits, underscores and dashes, starting with a letter.", s)
					ok = false
				}
				l.Alias = s
			}
		}
	}
	if a, has := content.Attributes["port"]; has {
		if val, good := d.evalStatic(a.Expr, "A link port"); good {
			n, good := d.toInt(a, val, 1, 65535)
			l.Port = int(n)
			ok = ok && good
		}
	}
	for _, prev := range c.Links {
		if prev.Alias == l.Alias {
			d.errorf(b.DefRange.Ptr(), "Duplicate link alias",
				"Container %q already has a link with alias %q at %s; give this one another alias.", c.Name, l.Alias, prev.DeclRange)
			ok = false
		}
	}
	return l, ok
}

var placementSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "hosts"}, {Name: "labels"}, {Name: "strategy"}, {Name: "distinct_hosts"},
	},
}

func (d *decoder) decodePlacement(b *hcl.Block, c *Container) {
	content, diags := b.Body.Content(placementSchema)
	d.diags = append(d.diags, diags...)
	ctx := d.baseCtx()
	scope := refScope{what: "placement"}
	p := &c.Placement
	if a, ok := content.Attributes["hosts"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if hosts, ok := d.toStringList(a, val); ok {
				d.checkPlacementHosts(a, hosts)
				p.Hosts = hosts
			}
		}
	}
	if a, ok := content.Attributes["labels"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if m, ok := d.toStringMap(a, val); ok {
				p.Labels = m
				d.placementLabelAttrs = append(d.placementLabelAttrs, placementLabels{attr: a, labels: m})
			}
		}
	}
	if a, ok := content.Attributes["strategy"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if s, ok := d.toString(a, val); ok {
				switch s {
				case "spread":
					p.Strategy = Spread
				case "binpack":
					p.Strategy = Binpack
				default:
					d.errorf(a.Expr.Range().Ptr(), "Invalid placement strategy",
						"strategy must be \"spread\" (most resources left free) or \"binpack\" (fewest), not %q.", s)
				}
			}
		}
	}
	if a, ok := content.Attributes["distinct_hosts"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			p.DistinctHosts, _ = d.toBool(a, val)
		}
	}
}

func (d *decoder) checkPlacementHosts(a *hcl.Attribute, hosts []string) {
	if len(hosts) == 0 {
		d.errorf(a.Expr.Range().Ptr(), "Empty host list",
			"placement.hosts = [] allows no host at all; remove it to allow every host.")
		return
	}
	declared := make([]string, 0, len(d.cfg.Hosts))
	for _, h := range d.cfg.Hosts {
		declared = append(declared, h.Name)
	}
	seen := map[string]bool{}
	for _, name := range hosts {
		if seen[name] {
			d.errorf(a.Expr.Range().Ptr(), "Duplicate host in placement", "placement.hosts lists %q twice.", name)
		}
		seen[name] = true
		if d.cfg.Host(name) != nil {
			continue
		}
		detail := fmt.Sprintf("placement.hosts names %q, but no host block declares it.", name)
		if s := suggest(name, declared); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		} else {
			detail += fmt.Sprintf(" Declared hosts: %s.", joinQuoted(declared))
		}
		d.errorf(a.Expr.Range().Ptr(), "Reference to undeclared host", "%s", detail)
	}
}

func joinQuoted(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", n)
	}
	return s
}

// ContainerValues builds the value of the container object in expressions.
// lookup gives what is known of each instance (by address); nil, or a
// lookup that returns the zero InstanceValues, leaves host, host_address and
// Docker-picked ports unknown.
func (c *Config) ContainerValues(lookup func(addr string) InstanceValues) cty.Value {
	obj := map[string]cty.Value{}
	for _, ct := range c.Containers {
		obj[ct.Name] = c.containerValue(ct, lookup)
	}
	return cty.ObjectVal(obj)
}

// InstanceValues is what placement and apply have made known of one
// instance.
type InstanceValues struct {
	// Host is the placed host's name; "" while unknown.
	Host string
	// HostAddress is where the instance's published ports are reached;
	// "" while unknown.
	HostAddress string
	// Ports maps a container port key ("8080", "53/udp") to its published
	// host port; a port missing here is unknown unless it is fixed.
	Ports map[string]int
}

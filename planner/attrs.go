package planner

import (
	"maps"
	"slices"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// resolvedAttrs is what the plan needs of a resolved instance: its
// attributes, whether they are all known, and the config hash. Instances
// that resolve to the same attributes share one resolvedAttrs, and with it
// the changes of their create steps; none of it is changed once built.
type resolvedAttrs struct {
	attrs []Attr
	known bool
	hash  string
	// creates are the changes of a create step, built on first use.
	creates []AttrChange
}

// createChanges are the changes of a step that creates a container with
// these attributes: every attribute, as an addition.
func (r *resolvedAttrs) createChanges() []AttrChange {
	if r.creates == nil {
		r.creates = diffAttrs(nil, r.attrs, false)
	}
	return r.creates
}

// instanceResolver resolves the instances of one container, in index
// order, for decideActions. The attributes of an instance depend only on
// its declared fields, its evaluated deferred attributes, its container's
// links and the placement and ports of the containers it links to or
// refers to; the last two do not change while one container's instances
// are resolved (dependencies are resolved first, and a container never
// refers to itself). So an instance whose fields and deferred values equal
// the previous instance's gets the previous attributes, without building
// its configuration and hash again: at a million instances that is most of
// the planner's time and memory.
type instanceResolver struct {
	cfg *hclspec.Config
	ct  *hclspec.Container
	w   *World

	prev     *hclspec.Instance
	prevVals deferredValues
	res      *resolvedAttrs

	// refs and refsVal cache container.* for the deferred expressions.
	refs    []string
	refsVal cty.Value
	refsSet bool
}

func newInstanceResolver(cfg *hclspec.Config, ct *hclspec.Container, w *World) *instanceResolver {
	return &instanceResolver{cfg: cfg, ct: ct, w: w}
}

// resolve returns the attributes of inst, the next instance of the
// container.
func (ir *instanceResolver) resolve(inst *hclspec.Instance) (*resolvedAttrs, error) {
	vals, err := evalDeferred(inst, func() *hcl.EvalContext {
		return ir.cfg.EvalContext(inst, ir.containerValues(inst))
	})
	if err != nil {
		return nil, err
	}
	if ir.prev == nil || !sameDeclared(ir.prev, inst) || !sameValues(ir.prevVals, vals) {
		r := resolveValues(ir.cfg, ir.ct, inst, ir.w, vals)
		ir.res = &resolvedAttrs{attrs: r.Attrs, known: r.Known, hash: r.Hash}
	}
	ir.prev, ir.prevVals = inst, vals
	return ir.res, nil
}

// containerValues is container.* for the instance's deferred expressions;
// it is the same for every instance that names the same containers.
func (ir *instanceResolver) containerValues(inst *hclspec.Instance) cty.Value {
	refs := deferredRefs(inst)
	if !ir.refsSet || !slices.Equal(refs, ir.refs) {
		ir.refs, ir.refsVal, ir.refsSet = refs, ir.cfg.ContainerValuesOf(refs, ir.w.values), true
	}
	return ir.refsVal
}

func sameValues(a, b deferredValues) bool {
	for i := range a {
		if !a[i].RawEquals(b[i]) {
			return false
		}
	}
	return true
}

// sameDeclared reports whether two instances of one container declare the
// same values for every field Resolve reads besides the deferred ones and
// the name and index (which are not attributes).
func sameDeclared(a, b *hclspec.Instance) bool {
	if a.Image != b.Image || a.User != b.User || a.WorkingDir != b.WorkingDir || a.Hostname != b.Hostname ||
		a.Resources != b.Resources || a.Restart != b.Restart || !slices.Equal(a.Volumes, b.Volumes) {
		return false
	}
	if !slices.EqualFunc(a.Ports, b.Ports, func(p, q hclspec.Port) bool {
		return p.HostIP == q.HostIP && p.HostPort == q.HostPort && p.ContainerPort == q.ContainerPort && p.Protocol == q.Protocol
	}) {
		return false
	}
	if (a.StopTimeout == nil) != (b.StopTimeout == nil) || (a.StopTimeout != nil && *a.StopTimeout != *b.StopTimeout) {
		return false
	}
	if a.ReadOnly != b.ReadOnly || a.Init != b.Init || !slices.Equal(a.CapAdd, b.CapAdd) || !slices.Equal(a.CapDrop, b.CapDrop) ||
		!slices.Equal(a.Tmpfs, b.Tmpfs) || a.ShmSize != b.ShmSize || !sameLogging(a.Logging, b.Logging) ||
		!slices.Equal(a.Ulimits, b.Ulimits) || !maps.Equal(a.Sysctls, b.Sysctls) || !maps.Equal(a.ExtraHosts, b.ExtraHosts) {
		return false
	}
	return sameHealth(a.Health, b.Health)
}

func sameHealth(a, b *hclspec.Health) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Interval == b.Interval && a.Timeout == b.Timeout && a.StartPeriod == b.StartPeriod &&
		a.Retries == b.Retries && a.Command.RawEquals(b.Command)
}

func sameLogging(a, b *hclspec.Logging) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Driver == b.Driver && a.Options.RawEquals(b.Options)
}

package planner

import (
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/state"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// OutputValue is an output's value as far as the state makes it known.
type OutputValue struct {
	Name        string
	Description string
	Sensitive   bool
	// Value has unknown parts where it depends on an instance the state
	// does not record (not applied yet) or a port it did not publish.
	Value cty.Value
}

// Outputs evaluates cfg's outputs with the hosts, addresses and ports the
// state records for each instance (st may be nil: nothing applied yet).
func Outputs(cfg *hclspec.Config, st *state.State) ([]OutputValue, hcl.Diagnostics) {
	lookup := func(addr string) hclspec.InstanceValues {
		if st == nil || st.Instances[addr] == nil {
			return hclspec.InstanceValues{}
		}
		si := st.Instances[addr]
		return hclspec.InstanceValues{Host: si.Host, HostAddress: si.HostAddress, Ports: PortsOf(si.Ports)}
	}
	var out []OutputValue
	var diags hcl.Diagnostics
	for _, o := range cfg.Outputs {
		v, d := o.Value.Eval(cfg.EvalContext(&hclspec.Instance{}, cfg.ContainerValuesOf(o.Value.Refs, lookup)))
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		out = append(out, OutputValue{Name: o.Name, Description: o.Description, Sensitive: o.Sensitive || v.HasMarkDeep(hclspec.Sensitive), Value: v})
	}
	return out, diags
}

package planner_test

import (
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
	"github.com/zclconf/go-cty/cty"
)

const outputsConfig = `project = "shop"
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cr3t"
}
container "api" {
  image = "shop/api:1"
  count = 2
  ports = ["8080"]
}
output "api_addresses" {
  value = [for a in container.api : a.address]
}
output "first_host" {
  value = container.api[0].host
}
output "static" {
  value = "v1"
}
output "token" {
  value     = var.token
  sensitive = true
}
`

// TestOutputs: outputs take the hosts, addresses and ports the state
// records; what the state does not know yet stays unknown.
func TestOutputs(t *testing.T) {
	cfg := load(t, outputsConfig)
	outs, diags := planner.Outputs(cfg, nil)
	if diags.HasErrors() || len(outs) != 4 {
		t.Fatalf("outputs without a state: %v, %v", outs, diags)
	}
	if outs[0].Value.IsWhollyKnown() || outs[1].Value.IsKnown() || outs[2].Value != cty.StringVal("v1") || !outs[3].Sensitive {
		t.Errorf("without a state: %#v", outs)
	}

	st := state.New("shop", testLineage)
	for i, host := range []string{"node1", "node2"} {
		addr := []string{"api[0]", "api[1]"}[i]
		st.Instances[addr] = &state.Instance{Address: addr, Container: "api", Index: i, Host: host,
			HostAddress: []string{"10.0.0.1", "10.0.0.2"}[i],
			Ports:       []engine.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostPort: 32768 + i}}}
	}
	outs, diags = planner.Outputs(cfg, st)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := cty.TupleVal([]cty.Value{cty.StringVal("10.0.0.1:32768"), cty.StringVal("10.0.0.2:32769")})
	if !outs[0].Value.RawEquals(want) || outs[1].Value != cty.StringVal("node1") {
		t.Errorf("with a state: %#v", outs)
	}
}

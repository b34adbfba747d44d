package hclspec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// generatedConfig writes a configuration with the given numbers of hosts
// and containers: every fifth container has count = 3, links to the
// container before it and refers to its address in env.
func generatedConfig(hosts, containers int) map[string][]byte {
	var b strings.Builder
	b.WriteString("project = \"bench\"\nvariable \"tag\" { default = \"1.0\" }\nlocals { registry = \"registry.example.com:5000\" }\n")
	for i := range hosts {
		fmt.Fprintf(&b, "host \"node%d\" {\n  address = \"ssh://deploy@10.0.%d.%d\"\n  labels = { zone = \"z%d\", disk = \"ssd\" }\n  capacity {\n    cpu = 16\n    memory = \"64GiB\"\n  }\n}\n", i, i/250, i%250+1, i%3)
	}
	for i := range containers {
		fmt.Fprintf(&b, "container \"c%d\" {\n  image = \"${local.registry}/app%d:${var.tag}\"\n  ports = [\"8080\"]\n", i, i)
		b.WriteString("  resources {\n    cpu = 0.25\n    memory = \"128MiB\"\n  }\n  placement {\n    labels = { disk = \"ssd\" }\n  }\n")
		fmt.Fprintf(&b, "  env = { NAME = \"c%d\", MODE = upper(\"prod\") }\n", i)
		if i%5 == 4 {
			fmt.Fprintf(&b, "  count = 3\n  link \"c%d\" {}\n  labels = { upstream = container.c%d.address }\n", i-1, i-1)
		}
		b.WriteString("}\n")
	}
	return map[string][]byte{"bench.dockplan.hcl": []byte(b.String())}
}

// BenchmarkDecode decodes a configuration of 50 hosts and 1,000 containers
// (1,400 instances). Target: under 50 ms per decode.
func BenchmarkDecode(b *testing.B) {
	srcs := generatedConfig(50, 1000)
	b.SetBytes(int64(len(srcs["bench.dockplan.hcl"])))
	b.ReportAllocs()
	for b.Loop() {
		cfg, _, diags := hclspec.LoadSources(".", srcs, hclspec.LoadOptions{})
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if n := len(cfg.Instances()); n != 1400 {
			b.Fatalf("%d instances", n)
		}
	}
}

// BenchmarkParseOnly is the floor under BenchmarkDecode: HCL's own parser on
// the same source, without any decoding.
func BenchmarkParseOnly(b *testing.B) {
	srcs := generatedConfig(50, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := hclparse.NewParser().ParseHCL(srcs["bench.dockplan.hcl"], "bench.dockplan.hcl"); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}

package hclspec

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestExpressionBounds: calls that would build huge values fail, naming
// the function and the bound; calls just under the bounds work.
func TestExpressionBounds(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want string // "" for success
	}{
		{"setproduct over the bound", `length(setproduct(range(1024), range(1024), range(1024)))`, "setproduct() would make 1073741824 elements, more than the 1000000"},
		{"setproduct under the bound", `length(setproduct(range(100), range(100)))`, ""},
		{"indent over the bound", `indent(99999999999, "a\nb")`, "the result of indent() would be 186.26GiB"},
		{"indent under the bound", `indent(1000, "a\nb")`, ""},
		{"format width over the bound", `formatlist("%0999999d", range(100))`, "the result of formatlist() would be"},
		{"format width under the bound", `format("%0999999d", 1)`, ""},
		{"replace that multiplies", `replace(format("%0999999d", 1), "", format("%0200d", 1))`, "the result of replace() would be"},
		{"replace that does not", `replace(format("%0999999d", 1), "99", "x")`, ""},
		{"join of too much", `join("", [for i in range(100) : format("%0999999d", i)])`, "the arguments of join() would be"},
		{"join just under the bound", `join("", [for i in range(60) : format("%0999999d", i)])`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "project = \"x\"\nlocals {\n  v = " + tt.expr + "\n}\n"
			_, _, diags := LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(src)}, LoadOptions{})
			switch {
			case tt.want == "" && diags.HasErrors():
				t.Fatalf("want success, got %v", diags)
			case tt.want != "" && !strings.Contains(diags.Error(), tt.want):
				t.Fatalf("want an error containing %q, got %v", tt.want, diags)
			}
		})
	}
}

// runaway builds a billion numbers in nested for expressions; the inner
// call to tostring fails once the decode is given up, so the abandoned
// goroutine stops soon after.
const runaway = `project = "x"
locals {
  v = [for a in range(1024) : [for b in range(1024) : [for c in range(1024) : tostring(c)]]]
}
`

// TestEvalMemoryGuard: a configuration whose evaluation grows the heap by
// more than EvalMemory is given up with a diagnostic, not left to run the
// machine out of memory.
func TestEvalMemoryGuard(t *testing.T) {
	start := time.Now()
	cfg, _, diags := LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(runaway)}, LoadOptions{EvalMemory: 64 << 20})
	if cfg != nil || !strings.Contains(diags.Error(), "Configuration too large to evaluate") || !strings.Contains(diags.Error(), "more than 64MiB of memory") {
		t.Fatalf("LoadSources = %v, %v; want the decode given up", cfg, diags)
	}
	t.Logf("given up after %v", time.Since(start).Round(time.Millisecond))
}

// TestLoadInterrupted: an interrupt ends a long evaluation (without it,
// this one would run until the machine is out of memory).
func TestLoadInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	cfg, _, diags := LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(runaway)}, LoadOptions{Context: ctx})
	if cfg != nil || !strings.Contains(diags.Error(), "Interrupted") {
		t.Fatalf("LoadSources = %v, %v; want it interrupted", cfg, diags)
	}
}

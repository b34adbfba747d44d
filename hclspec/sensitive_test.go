package hclspec_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
	"github.com/hashicorp/hcl/v2"
)

const canary = "CANARY-s3cr3t-7f2a"

// TestSensitiveNeverInDiagnostics: a configuration error that involves a
// sensitive value names the place and the problem, never the value. Go-cty's
// functions quote the arguments they refuse, so each of these once printed
// the secret.
func TestSensitiveNeverInDiagnostics(t *testing.T) {
	tests := []struct {
		name    string
		attr    string
		extra   string // more top-level blocks
		summary string
	}{
		{name: "tonumber", attr: `env = { A = tonumber(var.secret) }`, summary: "Invalid function argument"},
		{name: "tobool", attr: `env = { A = tobool(var.secret) }`, summary: "Invalid function argument"},
		{name: "parseint", attr: `env = { A = parseint(var.secret, 10) }`, summary: "Invalid function argument"},
		{name: "file", attr: `env = { A = file(var.secret) }`, summary: "Error in function call"},
		{name: "file of a derived path", attr: `env = { A = file("/nonexistent/${var.secret}") }`, summary: "Error in function call"},
		{name: "inside try", attr: `env = { A = try(tonumber(var.secret)) }`, summary: "Error in function call"},
		{name: "inside a local", attr: `env = { A = local.n }`, extra: `locals { n = tonumber(var.secret) }`, summary: "Invalid function argument"},
		{name: "arithmetic", attr: `env = { A = var.secret + 1 }`, summary: "Invalid operand"},
		{name: "wrong type for count", attr: `count = var.secret`, summary: "Sensitive value not allowed"},
		{name: "in a port", attr: `ports = [var.secret]`, summary: "Sensitive value not allowed"},
		{name: "in a memory size", attr: "resources {\n    memory = var.secret\n  }", summary: "Sensitive value not allowed"},
		{name: "as an env name", attr: `env = { (var.secret) = "x" }`, summary: "Sensitive value not allowed"},
		{name: "as label names", attr: `labels = jsondecode("{\"${var.secret}\": \"x\"}")`, summary: "Sensitive value not allowed"},
		{name: "a sensitive map as env", attr: `env = var.secret_map`, summary: "Sensitive value not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `project = "demo"
variable "secret" {
  type      = string
  sensitive = true
}
variable "secret_map" {
  type      = map(string)
  sensitive = true
  default   = {}
}
` + tt.extra + `
container "web" {
  image = "nginx:1.25"
  ` + tt.attr + `
}
`
			_, files, diags := hclspec.LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(src)},
				hclspec.LoadOptions{Vars: []string{"secret=" + canary}})
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var text, js bytes.Buffer
			if err := render.Diagnostics(&text, diags, files, render.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := render.Validate(&js, diags, files); err != nil {
				t.Fatal(err)
			}
			for _, out := range []string{text.String(), js.String()} {
				if strings.Contains(out, canary) || strings.Contains(out, "s3cr3t") {
					t.Errorf("the secret shows:\n%s", out)
				}
			}
			if !strings.Contains(text.String(), tt.summary) || !strings.Contains(text.String(), "main.dockplan.hcl line") {
				t.Errorf("want %q with file and line, got:\n%s", tt.summary, text.String())
			}
		})
	}
}

// TestSensitiveValuesStillWork: the wrapper that hides sensitive values in
// errors changes no result: values, marks and unknowns come through.
func TestSensitiveValuesStillWork(t *testing.T) {
	src := `project = "demo"
variable "secret" {
  type      = string
  sensitive = true
}
variable "m" {
  type      = map(string)
  sensitive = true
  default   = { K = "v" }
}
container "db" {
  image = "postgres:16"
  ports = ["5432"]
}
container "web" {
  image = "nginx:1.25"
  env = merge(
    { A = upper(var.secret), N = tostring(tonumber("42")) },
    { for k in nonsensitive(keys(var.m)) : k => var.m[k] },
    { DB = container.db.address, L = tostring(length(split("-", var.secret))) },
  )
}
`
	cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(src)},
		hclspec.LoadOptions{Vars: []string{"secret=" + canary}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	env := cfg.Container("web").Instances[0].Env.Value
	if env.HasMark(hclspec.Sensitive) {
		t.Error("env is sensitive as a whole; only the values derived from secrets should be")
	}
	m := env.AsValueMap()
	for key, wantSensitive := range map[string]bool{"A": true, "K": true, "L": true, "N": false} {
		if got := m[key].HasMark(hclspec.Sensitive); got != wantSensitive {
			t.Errorf("env.%s sensitive = %v, want %v", key, got, wantSensitive)
		}
	}
	if a, _ := m["A"].Unmark(); a.AsString() != strings.ToUpper(canary) {
		t.Errorf("env.A = %#v", a)
	}
	if m["DB"].IsKnown() {
		t.Errorf("env.DB = %#v, want unknown until placement", m["DB"])
	}
}

// TestReadsOnlyRegularFiles: file(), -var-file and configuration files
// must refuse devices and FIFOs at once: /dev/zero would be read until
// memory ran out, and opening a FIFO blocks forever. (/dev/null stands in
// for /dev/zero, so that a regression fails instead of exhausting memory.)
func TestReadsOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Should a regression block on the FIFO, a writer releases it.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	src := func(path string) map[string][]byte {
		return map[string][]byte{"main.dockplan.hcl": []byte("project = \"demo\"\ncontainer \"web\" {\n  image = \"nginx:1.25\"\n  env = { A = file(\"" + path + "\") }\n}\n")}
	}
	plain := map[string][]byte{"main.dockplan.hcl": []byte("project = \"demo\"\nvariable \"v\" {\n  default = 1\n}\n")}
	tests := []struct {
		name string
		load func() hcl.Diagnostics
		want string
	}{
		{name: "file() of a device", want: "cannot read /dev/null: not a regular file", load: func() hcl.Diagnostics {
			_, _, diags := hclspec.LoadSources(".", src("/dev/null"), hclspec.LoadOptions{})
			return diags
		}},
		{name: "file() of a FIFO", want: "not a regular file", load: func() hcl.Diagnostics {
			_, _, diags := hclspec.LoadSources(".", src(fifo), hclspec.LoadOptions{})
			return diags
		}},
		{name: "-var-file of a device", want: "-var-file /dev/null: not a regular file", load: func() hcl.Diagnostics {
			_, _, diags := hclspec.LoadSources(".", plain, hclspec.LoadOptions{VarFiles: []string{"/dev/null"}})
			return diags
		}},
		{name: "-var-file of a FIFO", want: "not a regular file", load: func() hcl.Diagnostics {
			_, _, diags := hclspec.LoadSources(".", plain, hclspec.LoadOptions{VarFiles: []string{fifo}})
			return diags
		}},
		{name: "a FIFO named like a configuration file", want: "main.dockplan.hcl: not a regular file", load: func() hcl.Diagnostics {
			cfgDir := t.TempDir()
			if err := syscall.Mkfifo(filepath.Join(cfgDir, "main.dockplan.hcl"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, diags := hclspec.Load(cfgDir, hclspec.LoadOptions{})
			return diags
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan hcl.Diagnostics, 1)
			go func() { done <- tt.load() }()
			select {
			case diags := <-done:
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.want) {
					t.Errorf("diags = %v, want %q", diags, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still reading after 10s")
			}
		})
	}
}

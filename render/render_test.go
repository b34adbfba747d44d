package render_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/render"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name + ".golden"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./render -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func diagnostics(t *testing.T) (hcl.Diagnostics, map[string]*hcl.File) {
	src := "project = \"p\"\ncontainer \"web\" {\n\timage = 42\n}\n"
	p := hclparse.NewParser()
	f, _ := p.ParseHCL([]byte(src), "main.dockplan.hcl")
	attrs, _ := f.Body.JustAttributes()
	rng := attrs["project"].Expr.Range()
	return hcl.Diagnostics{
		{Severity: hcl.DiagWarning, Summary: "A warning", Detail: "Detail of the warning.", Subject: &rng},
		{Severity: hcl.DiagError, Summary: "No place", Detail: "An error without a source range."},
		{Severity: hcl.DiagError, Summary: "Tab in line", Subject: &hcl.Range{Filename: "main.dockplan.hcl",
			Start: hcl.Pos{Line: 3, Column: 2, Byte: 33}, End: hcl.Pos{Line: 3, Column: 7, Byte: 38}}},
	}, p.Files()
}

func TestDiagnosticsText(t *testing.T) {
	diags, files := diagnostics(t)
	var buf bytes.Buffer
	if err := render.Diagnostics(&buf, diags, files, render.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "diagnostics", buf.Bytes())
	buf.Reset()
	_ = render.Diagnostics(&buf, diags, files, render.TextOptions{Color: true})
	if !strings.Contains(buf.String(), "\x1b[1;31mError:") {
		t.Errorf("colour output has no red Error: %q", buf.String())
	}
}

func TestValidateJSON(t *testing.T) {
	diags, files := diagnostics(t)
	var buf bytes.Buffer
	if err := render.Validate(&buf, diags, files); err != nil {
		t.Fatal(err)
	}
	var res render.ValidateResult
	if err := json.Unmarshal(buf.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Valid || res.ErrorCount != 2 || res.WarningCount != 1 || res.FormatVersion != "1.0" {
		t.Errorf("result = %+v", res)
	}
	if r := res.Diagnostics[0].Range; r == nil || r.Start.Line != 1 || r.Start.Column != 11 {
		t.Errorf("range = %+v", r)
	}
	if s := res.Diagnostics[0].Snippet; s == nil || s.Code != `project = "p"` || s.HighlightStartOffset != 10 {
		t.Errorf("snippet = %+v", s)
	}
}

func TestHostsTable(t *testing.T) {
	snap := &probe.Snapshot{FormatVersion: "1.0", Project: "p", Hosts: []*probe.HostFacts{
		{Name: "node1", Address: "ssh://deploy@10.0.0.11", Reachable: true, RoundTrip: 12 * time.Millisecond,
			Engine: &probe.EngineFacts{ServerVersion: "20.10.24"}, Total: probe.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30},
			Allocated: probe.Resources{MilliCPU: 1500, MemoryBytes: 1 << 30}, Free: probe.Resources{MilliCPU: 2500, MemoryBytes: 7 << 30},
			Managed: []probe.ManagedContainer{{Name: "p-web-0"}}, AllContainers: 3, Unbounded: 1},
		{Name: "node2", Address: "tcp://10.0.0.12:2376", Error: `host "node2": no answer within 10s`},
	}}
	var buf bytes.Buffer
	if err := render.HostsTable(&buf, snap, render.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "hosts", buf.Bytes())
}

package hclspec_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite golden files")

var wantLine = regexp.MustCompile(`(?m)^# want: (Warning )?(.+) @ (\d+):(\d+)$`)

// TestInvalid decodes every testdata/invalid/*.hcl file and checks the
// diagnostics against the "# want:" lines at its top (severity, summary,
// line, column), then the rendered text against NAME.golden.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, m := range wantLine.FindAllStringSubmatch(string(src), -1) {
				sev := "error"
				if m[1] != "" {
					sev = "warning"
				}
				want = append(want, fmt.Sprintf("%s %s @ %s:%s", sev, m[2], m[3], m[4]))
			}
			if len(want) == 0 {
				t.Fatalf("%s has no # want: lines", file)
			}
			_, parsed, diags := hclspec.LoadSources(".", map[string][]byte{file: src}, hclspec.LoadOptions{})
			var got []string
			for _, d := range diags {
				sev := "error"
				if d.Severity == hcl.DiagWarning {
					sev = "warning"
				}
				line, col := 0, 0
				if d.Subject != nil {
					line, col = d.Subject.Start.Line, d.Subject.Start.Column
				}
				got = append(got, fmt.Sprintf("%s %s @ %d:%d", sev, d.Summary, line, col))
			}
			sort.Strings(want)
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\nall: %v", diff, diags)
			}
			var buf bytes.Buffer
			if err := render.Diagnostics(&buf, diags, parsed, render.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			compareGolden(t, strings.TrimSuffix(file, ".hcl")+".golden", buf.Bytes())
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./hclspec -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); run go test ./hclspec -update if the change is intended:\n%s", path, diff)
	}
}

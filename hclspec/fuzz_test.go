package hclspec_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
)

// FuzzDecode feeds arbitrary sources to the decoder and the diagnostics
// renderer. Neither may panic; an error result must carry diagnostics, and
// a success must give a configuration. The seed corpus is every
// configuration in testdata and examples, and runs in every `go test`.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.hcl", "../examples/*/*.dockplan.hcl"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Add([]byte(`project = "p"` + "\ncontainer \"a\" {\n  image = \"x\"\n  count = 1e400\n}\n"))
	f.Add([]byte(`project = "p"` + "\nvariable \"v\" {\n  type = map(object({a=number}))\n  default = {}\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		opts := hclspec.LoadOptions{Vars: []string{"db_password=x"}}
		cfg, files, diags := hclspec.LoadSources(".", map[string][]byte{"fuzz.dockplan.hcl": src}, opts)
		if diags.HasErrors() && cfg != nil {
			t.Fatalf("a configuration came back with errors: %v", diags)
		}
		if !diags.HasErrors() && cfg == nil {
			t.Fatalf("no configuration and no error")
		}
		var buf bytes.Buffer
		if err := render.Diagnostics(&buf, diags, files, render.TextOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := render.Validate(&buf, diags, files); err != nil {
			t.Fatal(err)
		}
	})
}

package cli

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeArgs(t *testing.T) {
	var out bytes.Buffer
	root := newRootCommand(&globalOptions{}, Streams{Out: &out, Err: &out})
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "terraform style", in: []string{"validate", "-var", "a=1", "-json"}, want: []string{"validate", "--var", "a=1", "--json"}},
		{name: "cobra style untouched", in: []string{"validate", "--var", "a=1", "--json"}, want: []string{"validate", "--var", "a=1", "--json"}},
		{name: "equals form", in: []string{"-chdir=x", "validate", "-var=a=1"}, want: []string{"--chdir=x", "validate", "--var=a=1"}},
		{name: "value that looks like a flag", in: []string{"validate", "-var", "-json"}, want: []string{"validate", "--var", "-json"}},
		{name: "stdin and negative numbers", in: []string{"fmt", "-", "-1"}, want: []string{"fmt", "-", "-1"}},
		{name: "short help", in: []string{"fmt", "-h"}, want: []string{"fmt", "-h"}},
		{name: "after terminator", in: []string{"fmt", "--", "-check"}, want: []string{"fmt", "--", "-check"}},
		{name: "unknown flag", in: []string{"fmt", "-nope"}, want: []string{"fmt", "--nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, normalizeArgs(root, tt.in)); diff != "" {
				t.Errorf("normalizeArgs (-want +got):\n%s", diff)
			}
		})
	}
}

package cli

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasAnExample walks the whole command tree: every command
// a user can run shows an example in its --help.
func TestEveryCommandHasAnExample(t *testing.T) {
	var out bytes.Buffer
	root := newRootCommand(&globalOptions{}, Streams{Out: &out, Err: &out})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Example == "" {
			t.Errorf("%q has no example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

package cli

import (
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeArgs rewrites Terraform-style single-dash long flags
// (-auto-approve, -var=x) into the double-dash form cobra parses. cobra alone
// reads "-var" as the shorthand cluster -v -a -r. dockplan has no shorthand
// flags but -h, so every "-name" of two or more characters starting with a
// letter is a long flag (an unknown one then gets cobra's "unknown flag"
// error, and a partial one completes). "-" (stdin) and negative numbers
// pass through untouched, and a value that follows a flag taking one is
// never mistaken for a flag.
func normalizeArgs(root *cobra.Command, args []string) []string {
	flags := map[string]bool{} // name → takes a value
	collectFlags(root, flags)
	out := make([]string, 0, len(args))
	expectValue := false
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if expectValue {
			out = append(out, a)
			expectValue = false
			continue
		}
		name, hasValue := flagName(a)
		takesValue, known := flags[name]
		if singleDashLong.MatchString(a) {
			a = "-" + a
		}
		if known && takesValue && !hasValue {
			expectValue = true
		}
		out = append(out, a)
	}
	return out
}

// flagName returns the flag name of "-name", "--name" or "-name=value".
func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", false
	}
	name := strings.TrimLeft(arg, "-")
	name, _, hasValue := strings.Cut(name, "=")
	return name, hasValue
}

var singleDashLong = regexp.MustCompile(`^-[a-zA-Z][a-zA-Z0-9_-]+(=.*)?$`)

func collectFlags(cmd *cobra.Command, flags map[string]bool) {
	add := func(f *pflag.Flag) { flags[f.Name] = f.Value.Type() != "bool" }
	cmd.Flags().VisitAll(add)
	cmd.PersistentFlags().VisitAll(add)
	for _, c := range cmd.Commands() {
		collectFlags(c, flags)
	}
}

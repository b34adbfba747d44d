package cli

import (
	"context"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/spf13/pflag"
)

// varFlags are the variable options every command that reads the
// configuration takes.
type varFlags struct {
	vars     []string
	varFiles []string
}

func (v *varFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&v.vars, "var", nil, "set a variable, `NAME=VALUE` (repeatable; wins over -var-file)")
	fs.StringArrayVar(&v.varFiles, "var-file", nil, "read variables from an HCL `FILE` (repeatable; later files win)")
}

func (v *varFlags) loadOptions(ctx context.Context, environ []string) hclspec.LoadOptions {
	return hclspec.LoadOptions{Vars: v.vars, VarFiles: v.varFiles, Environ: environ, Context: ctx}
}

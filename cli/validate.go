package cli

import (
	"context"

	"fmt"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
	"github.com/spf13/cobra"
)

// validateOptions are the options of `dockplan validate`.
type validateOptions struct {
	global *globalOptions
	vars   varFlags
	json   bool
}

func newValidateCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &validateOptions{global: g}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration in the current directory",
		Long: `Validate reads every *.dockplan.hcl file in the current directory (or the
-chdir directory), resolves variables, and reports every problem with its
file, line, column and source. It contacts no Docker host.`,
		Example: `  dockplan validate
  dockplan validate -var api_replicas=5 -var-file prod.hcl
  dockplan -chdir=examples/three-tier validate -json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runValidate(cmd.Context(), opts, s) },
	}
	opts.vars.register(cmd.Flags())
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the result as JSON")
	return cmd
}

func runValidate(ctx context.Context, opts *validateOptions, s Streams) error {
	_, files, diags := hclspec.Load(".", opts.vars.loadOptions(ctx, s.Environ))
	if opts.json {
		if err := render.Validate(s.Out, diags, files); err != nil {
			return err
		}
		if diags.HasErrors() {
			return exitWith(ExitError)
		}
		return nil
	}
	if err := render.Diagnostics(s.Err, diags, files, render.TextOptions{Color: opts.global.color(s.ErrIsTerminal)}); err != nil {
		return err
	}
	if diags.HasErrors() {
		return exitWith(ExitError)
	}
	if opts.global.color(s.OutIsTerminal) {
		fmt.Fprintln(s.Out, "\x1b[1;32mThe configuration is valid.\x1b[0m")
	} else {
		fmt.Fprintln(s.Out, "The configuration is valid.")
	}
	return nil
}

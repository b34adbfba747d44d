package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/render"
	"github.com/dockplan/dockplan/state"
	"github.com/spf13/cobra"
	"github.com/zclconf/go-cty/cty"
)

type outputOptions struct {
	global     *globalOptions
	vars       varFlags
	statePath  string
	stateGiven bool
	json, raw  bool
}

func newOutputCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &outputOptions{global: g}
	cmd := &cobra.Command{
		Use:   "output [NAME]",
		Short: "Print the configuration's outputs as the state makes them known",
		Long: `Output evaluates the output blocks with the hosts, addresses and ports the
state records, and prints them: every output, or the one NAME names. It
contacts no host. Parts that depend on something not applied yet print as
(known after apply). A sensitive output prints as (sensitive value) in
every format: dockplan never prints a secret.

-raw prints one string, number or bool output without quotes, for scripts.`,
		Example: `  dockplan output
  dockplan output hello_url
  curl "$(dockplan output -raw hello_url)"
  dockplan output -json | jq -r '.worker_ports.value[]'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.stateGiven = cmd.Flags().Changed("state")
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return runOutput(cmd.Context(), opts, name, s)
		},
	}
	f := cmd.Flags()
	opts.vars.register(f)
	f.BoolVar(&opts.json, "json", false, "print as JSON: {NAME: {sensitive, known, type, value}}, or one such object with NAME")
	f.BoolVar(&opts.raw, "raw", false, "print NAME's value alone, without quotes (a string, number or bool)")
	f.StringVar(&opts.statePath, "state", state.DefaultPath, "the state file `PATH`, instead of a file state block's path")
	return cmd
}

func runOutput(ctx context.Context, opts *outputOptions, name string, s Streams) error {
	switch {
	case opts.json && opts.raw:
		return &exitError{code: ExitError, msg: "-json and -raw exclude each other: choose one"}
	case opts.raw && name == "":
		return &exitError{code: ExitError, msg: "-raw prints one output: name it, as in dockplan output -raw NAME"}
	}
	cfg, err := loadConfig(ctx, opts.global, opts.vars, s)
	if err != nil {
		return err
	}
	st, err := readState(ctx, cfg, stateFlag{path: opts.statePath, given: opts.stateGiven})
	if err != nil {
		return err
	}
	outs, diags := planner.Outputs(cfg, st)
	if diags.HasErrors() {
		if err := render.Diagnostics(s.Err, diags, cfg.Files, render.TextOptions{Color: opts.global.color(s.ErrIsTerminal)}); err != nil {
			return err
		}
		return exitWith(ExitError)
	}
	if name != "" {
		o, err := findOutput(cfg, outs, name)
		if err != nil {
			return err
		}
		outs = []planner.OutputValue{o}
	}
	switch {
	case opts.raw:
		return printRaw(s.Out, outs[0])
	case opts.json:
		return printOutputsJSON(s.Out, outs, name != "")
	case len(outs) == 0:
		fmt.Fprintln(s.Err, "The configuration declares no output blocks.")
		return nil
	case name != "":
		_, err := fmt.Fprintln(s.Out, render.OutputValueText(outs[0]))
		return err
	}
	return render.OutputsText(s.Out, outs)
}

// findOutput returns the output called name, or an error listing the
// declared ones.
func findOutput(cfg *hclspec.Config, outs []planner.OutputValue, name string) (planner.OutputValue, error) {
	for _, o := range outs {
		if o.Name == name {
			return o, nil
		}
	}
	var names []string
	for _, o := range cfg.Outputs {
		names = append(names, strconv.Quote(o.Name))
	}
	msg := fmt.Sprintf("the configuration has no output %q", name)
	if len(names) == 0 {
		return planner.OutputValue{}, &exitError{code: ExitError, msg: msg + "; it declares no output blocks"}
	}
	return planner.OutputValue{}, &exitError{code: ExitError, msg: fmt.Sprintf("%s; it declares %s", msg, strings.Join(names, ", "))}
}

// printRaw prints a string, number or bool output's value alone.
func printRaw(w io.Writer, o planner.OutputValue) error {
	v := o.Value
	switch {
	case o.Sensitive:
		return &exitError{code: ExitError, msg: fmt.Sprintf("output %q is sensitive, and dockplan never prints a sensitive value; read it where it comes from (its variable's source)", o.Name)}
	case !v.IsWhollyKnown():
		return &exitError{code: ExitError, msg: fmt.Sprintf("output %q is not known yet: it depends on what apply has not made yet; run dockplan apply first", o.Name)}
	case v.IsNull():
		return &exitError{code: ExitError, msg: fmt.Sprintf("output %q is null", o.Name)}
	}
	switch v.Type() {
	case cty.String:
		_, err := fmt.Fprintln(w, v.AsString())
		return err
	case cty.Number, cty.Bool:
		_, err := fmt.Fprintln(w, render.OutputValueText(o))
		return err
	}
	return &exitError{code: ExitError, msg: fmt.Sprintf("output %q is a %s: -raw prints only strings, numbers and bools; use -json", o.Name, v.Type().FriendlyName())}
}

func printOutputsJSON(w io.Writer, outs []planner.OutputValue, one bool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if one {
		j, err := render.OutputJSON(outs[0])
		if err != nil {
			return err
		}
		return enc.Encode(j)
	}
	all, err := render.OutputsJSON(outs)
	if err != nil {
		return err
	}
	return enc.Encode(all)
}

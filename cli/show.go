package cli

import (
	"fmt"
	"os"

	"github.com/dockplan/dockplan/planner"
	"github.com/spf13/cobra"
)

// showOptions are the options of `dockplan show`.
type showOptions struct {
	global *globalOptions
	json   bool
	format string
}

func newShowCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &showOptions{global: g}
	cmd := &cobra.Command{
		Use:   "show FILE",
		Short: "Show a saved plan",
		Long: `Show renders a plan saved with plan -out, as text, JSON or Markdown. It
contacts no host and never prints sensitive values.`,
		Example: `  dockplan show tonight.plan
  dockplan show -format=markdown tonight.plan > comment.md
  dockplan show -json tonight.plan`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runShow(opts, args[0], s) },
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the plan as JSON (same as -format=json)")
	cmd.Flags().StringVar(&opts.format, "format", "text", "output `FORMAT`: text, json or markdown")
	return cmd
}

func runShow(opts *showOptions, path string, s Streams) error {
	format, err := outputFormat(opts.format, opts.json)
	if err != nil {
		return err
	}
	sp, err := readSavedPlan(path)
	if err != nil {
		return err
	}
	return renderPlan(s, opts.global, sp.Plan, format)
}

func readSavedPlan(path string) (*planner.SavedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &exitError{code: ExitError, msg: fmt.Sprintf("cannot read the plan file %s: %v", path, unwrapPathError(err))}
	}
	sp, err := planner.ParseSavedPlan(path, data)
	if err != nil {
		return nil, &exitError{code: ExitError, msg: err.Error()}
	}
	return sp, nil
}

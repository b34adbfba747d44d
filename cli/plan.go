package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/render"
	"github.com/dockplan/dockplan/state"
	"github.com/spf13/cobra"
)

// planOptions are the options of `dockplan plan`.
type planOptions struct {
	global           *globalOptions
	vars             varFlags
	out              string
	refresh          bool
	json             bool
	format           string
	detailedExitCode bool
	probeTimeout     time.Duration
	statePath        string
	stateGiven       bool
	imageSource      string
	replace          []string
}

func newPlanCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &planOptions{global: g}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would do, and where each container would go",
		Long: `Plan probes every host for free capacity and for what really runs there,
compares that and the state with the configuration, and prints an ordered
plan that places each container where resources are free. It changes
nothing. -out saves the plan for apply; -refresh=false plans from the state
and the configuration alone, without contacting hosts.

Exit status: 0 on success; with -detailed-exitcode 0 when nothing would
change, 2 when something would, and 1 on error.`,
		Example: `  dockplan plan
  dockplan plan -out tonight.plan
  dockplan plan -refresh=false -format=markdown > plan.md
  dockplan plan -json | jq '.summary'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stateGiven = cmd.Flags().Changed("state")
			return runPlan(cmd.Context(), opts, s)
		},
	}
	f := cmd.Flags()
	opts.vars.register(f)
	f.StringVar(&opts.out, "out", "", "save the plan to `FILE` for apply (mode 0600: it holds secrets)")
	f.BoolVar(&opts.refresh, "refresh", true, "probe the hosts (false: plan from state and configuration alone)")
	f.BoolVar(&opts.json, "json", false, "print the plan as JSON (same as -format=json)")
	f.StringVar(&opts.format, "format", "text", "output `FORMAT`: text, json or markdown")
	f.BoolVar(&opts.detailedExitCode, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none")
	f.DurationVar(&opts.probeTimeout, "probe-timeout", engine.DefaultTimeout, "a host that does not answer within this `DURATION` is unreachable")
	f.StringVar(&opts.statePath, "state", state.DefaultPath, "the state file `PATH`, instead of a file state block's path")
	f.StringVar(&opts.imageSource, "image-source", "", "where hosts get images, for every container: `registry` or local (default: each container's image_source)")
	f.StringArrayVar(&opts.replace, "replace", nil, "re-create the instance at `ADDRESS` although nothing changed (repeatable)")
	return cmd
}

func runPlan(ctx context.Context, opts *planOptions, s Streams) error {
	format, err := outputFormat(opts.format, opts.json)
	if err != nil {
		return err
	}
	if opts.probeTimeout <= 0 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("-probe-timeout=%s must be more than zero, such as 10s", opts.probeTimeout)}
	}
	cfg, err := loadConfig(ctx, opts.global, opts.vars, s)
	if err != nil {
		return err
	}
	if err := overrideImageSource(cfg, opts.imageSource); err != nil {
		return err
	}
	st, err := readState(ctx, cfg, stateFlag{path: opts.statePath, given: opts.stateGiven})
	if err != nil {
		return err
	}
	replace, err := replaceSet(cfg, opts.replace)
	if err != nil {
		return err
	}
	plan, err := makePlan(ctx, cfg, st, opts.refresh, opts.probeTimeout, replace)
	if err != nil {
		return err
	}
	if err := renderPlan(s, opts.global, plan, format); err != nil {
		return err
	}
	if opts.out != "" {
		if err := writeSavedPlan(opts.out, plan, cfg, s.Environ); err != nil {
			return err
		}
		if format == "text" {
			fmt.Fprintf(s.Out, "\nSaved the plan to %s. Apply it with: dockplan apply %s\n", opts.out, opts.out)
		}
	}
	if opts.detailedExitCode && plan.Changes() {
		return exitWith(ExitChanges)
	}
	return nil
}

func outputFormat(format string, asJSON bool) (string, error) {
	if asJSON {
		format = "json"
	}
	switch format {
	case "text", "json", "markdown":
		return format, nil
	}
	return "", &exitError{code: ExitError, msg: fmt.Sprintf("-format=%s is not a format; use text, json or markdown", format)}
}

// readState reads the state from the backend the configuration and
// -state choose, and checks it belongs to the project. Plan takes no lock.
func readState(ctx context.Context, cfg *hclspec.Config, flag stateFlag) (*state.State, error) {
	b, err := openBackend(cfg.State, flag)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	st, err := b.Load(ctx)
	if err != nil {
		return nil, &exitError{code: ExitError, msg: err.Error()}
	}
	if st != nil && st.Project != cfg.Project {
		return nil, b.otherProject(st.Project, cfg.Project)
	}
	return st, nil
}

// makePlan probes the hosts (or builds the snapshot from the state when
// refresh is false) and runs the planner.
func makePlan(ctx context.Context, cfg *hclspec.Config, st *state.State, refresh bool, timeout time.Duration, replace map[string]bool) (*planner.Plan, error) {
	var snap *probe.Snapshot
	if refresh {
		snap = probe.Probe(ctx, cfg, probe.Options{Timeout: timeout})
	} else {
		snap = planner.OfflineSnapshot(cfg, st)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	plan, err := planner.Make(cfg, snap, st, planner.Options{Refreshed: refresh, Replace: replace})
	if err != nil {
		return makePlanError(err, snap)
	}
	return plan, nil
}

func renderPlan(s Streams, g *globalOptions, plan *planner.Plan, format string) error {
	switch format {
	case "json":
		return render.PlanJSON(s.Out, plan)
	case "markdown":
		return render.PlanMarkdown(s.Out, plan)
	}
	return render.PlanText(s.Out, plan, render.TextOptions{Color: g.color(s.OutIsTerminal)})
}

// writeSavedPlan writes the plan file atomically with mode 0600.
func writeSavedPlan(path string, plan *planner.Plan, cfg *hclspec.Config, environ []string) error {
	sp, err := planner.NewSavedPlan(plan, cfg, environ)
	if err != nil {
		return &exitError{code: ExitError, msg: "cannot save the plan: " + err.Error()}
	}
	data, err := sp.Encode()
	if err == nil {
		err = writeFileAtomic(path, data, 0o600) // it holds secrets
	}
	if err != nil {
		return &exitError{code: ExitError, msg: fmt.Sprintf("cannot write the plan to %s: %v", path, unwrapPathError(err))}
	}
	return nil
}

// replaceSet checks -replace addresses against the configuration's
// instances and returns them as a set.
func replaceSet(cfg *hclspec.Config, addrs []string) (map[string]bool, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	declared := map[string]bool{}
	for _, inst := range cfg.Instances() {
		declared[inst.Address] = true
	}
	set := map[string]bool{}
	for _, a := range addrs {
		if !declared[a] {
			return nil, &exitError{code: ExitError, msg: fmt.Sprintf("-replace=%s: the configuration declares no instance %q; name one as dockplan state list prints it, such as web[0] (or db without count)", a, a)}
		}
		set[a] = true
	}
	return set, nil
}

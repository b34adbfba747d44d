package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dockplan/dockplan/applier"
	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/render"
	"github.com/dockplan/dockplan/state"
	"github.com/spf13/cobra"
)

// applyOptions are the options of `dockplan apply` and `dockplan destroy`.
type applyOptions struct {
	global       *globalOptions
	vars         varFlags
	autoApprove  bool
	json         bool
	parallelism  int
	lockTimeout  time.Duration
	probeTimeout time.Duration
	statePath    string
	// stateGiven says that -state was given (see openBackend).
	stateGiven  bool
	imageSource string
	destroy     bool
	replace     []string
}

func newApplyCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &applyOptions{global: g}
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE]",
		Short: "Carry out the plan on the hosts",
		Long: `Apply makes a plan (as plan does), shows it, asks for "yes", and carries it
out on the hosts, saving the state after every step. Given a plan file saved
with plan -out, it applies that plan without asking, after checking that
neither the state nor the hosts changed since.

Exit status: 0 when every step completed, 1 when some failed (the others
went on; running apply again converges), 130 when interrupted.`,
		Example: `  dockplan apply
  dockplan apply -auto-approve -parallelism 4
  dockplan plan -out tonight.plan && dockplan apply tonight.plan`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			planFile := ""
			if len(args) == 1 {
				planFile = args[0]
			}
			opts.stateGiven = cmd.Flags().Changed("state")
			return runApply(cmd.Context(), opts, planFile, s)
		},
	}
	registerApplyFlags(cmd, opts)
	return cmd
}

func newDestroyCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &applyOptions{global: g, destroy: true}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete every container of the project",
		Long: `Destroy plans the deletion of every instance the state records and every
container of the project found on the hosts, shows it, asks for "yes", and
deletes them in reverse dependency order.`,
		Example: `  dockplan destroy
  dockplan destroy -auto-approve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.stateGiven = cmd.Flags().Changed("state")
			return runApply(cmd.Context(), opts, "", s)
		},
	}
	registerApplyFlags(cmd, opts)
	return cmd
}

func registerApplyFlags(cmd *cobra.Command, opts *applyOptions) {
	f := cmd.Flags()
	opts.vars.register(f)
	f.BoolVar(&opts.autoApprove, "auto-approve", false, "do not ask for confirmation")
	f.BoolVar(&opts.json, "json", false, "print progress as a stream of JSON events, one per line (implies -auto-approve)")
	f.IntVar(&opts.parallelism, "parallelism", applier.DefaultParallelism, "run at most `N` steps at once")
	f.DurationVar(&opts.lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for the state lock (0: fail at once)")
	f.DurationVar(&opts.probeTimeout, "probe-timeout", engine.DefaultTimeout, "a host that does not answer within this `DURATION` is unreachable")
	f.StringVar(&opts.statePath, "state", state.DefaultPath, "the state file `PATH`, instead of a file state block's path")
	f.StringVar(&opts.imageSource, "image-source", "", "where hosts get images, for every container: `registry` or local (default: each container's image_source)")
	if !opts.destroy {
		f.StringArrayVar(&opts.replace, "replace", nil, "re-create the instance at `ADDRESS` although nothing changed (repeatable)")
	}
}

// overrideImageSource applies -image-source to every container.
func overrideImageSource(cfg *hclspec.Config, source string) error {
	switch source {
	case "":
		return nil
	case "registry", "local":
		for _, ct := range cfg.Containers {
			ct.ImageSource = source
		}
		return nil
	}
	return &exitError{code: ExitError, msg: fmt.Sprintf("-image-source=%s is not a source; use registry or local", source)}
}

// applyRun is one apply's working set.
type applyRun struct {
	opts    *applyOptions
	s       Streams
	backend *backend
	cfg     *hclspec.Config
	st      *state.State
	snap    *probe.Snapshot
	plan    *planner.Plan
	out     *progress
}

func runApply(ctx context.Context, opts *applyOptions, planFile string, s Streams) error {
	if opts.parallelism < 1 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("-parallelism=%d must be at least 1", opts.parallelism)}
	}
	if opts.probeTimeout <= 0 || opts.lockTimeout < 0 {
		return &exitError{code: ExitError, msg: "-probe-timeout must be more than zero and -lock-timeout not negative"}
	}
	if planFile != "" && len(opts.replace) > 0 {
		return &exitError{code: ExitError, msg: "-replace applies to the plan apply makes; a saved plan is carried out as it was made (give -replace to dockplan plan -out instead)"}
	}
	a := &applyRun{opts: opts, s: s, out: newProgress(s, opts.json)}
	var saved *planner.SavedPlan
	var err error
	if planFile != "" {
		if saved, err = readSavedPlan(planFile); err != nil {
			return err
		}
		err = a.loadSavedConfig(ctx, saved)
	} else {
		a.cfg, err = loadConfig(ctx, opts.global, opts.vars, s)
	}
	if err != nil {
		return err
	}
	if saved == nil {
		if err := overrideImageSource(a.cfg, opts.imageSource); err != nil {
			return err
		}
	}
	// The configuration (or the one saved in the plan) says where the
	// state is.
	if a.backend, err = openBackend(a.cfg.State, stateFlag{path: opts.statePath, given: opts.stateGiven}); err != nil {
		return err
	}
	defer a.closeBackend()
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.loadState(ctx); err != nil {
		return err
	}
	if saved != nil {
		err = a.checkSaved(ctx, saved, planFile)
	} else {
		err = a.makePlan(ctx)
	}
	if err != nil {
		return err
	}
	if !a.plan.Changes() {
		a.out.noChanges()
		return nil
	}
	if saved == nil && !opts.autoApprove && !opts.json {
		if err := a.confirm(); err != nil {
			return err
		}
	}
	return a.apply(ctx)
}

func (a *applyRun) loadSavedConfig(ctx context.Context, sp *planner.SavedPlan) error {
	vals, err := sp.Values()
	if err != nil {
		return &exitError{code: ExitError, msg: err.Error()}
	}
	cfg, files, diags := hclspec.LoadSources(".", sp.Sources(), hclspec.LoadOptions{Values: vals, Environ: sp.Environ, Context: ctx})
	if err := render.Diagnostics(a.s.Err, diags, files, render.TextOptions{Color: a.opts.global.color(a.s.ErrIsTerminal)}); err != nil {
		return err
	}
	if diags.HasErrors() {
		return &exitError{code: ExitError, msg: "the configuration saved in the plan no longer decodes; make a new plan"}
	}
	a.cfg = cfg
	return nil
}

// lock takes the state lock for the whole operation, waiting up to
// -lock-timeout.
func (a *applyRun) lock(ctx context.Context) (func(), error) {
	op := "apply"
	if a.opts.destroy {
		op = "destroy"
	}
	id, err := a.backend.lock(ctx, op, a.opts.lockTimeout, a.s.Err)
	if err != nil {
		return nil, &exitError{code: ExitError, msg: err.Error()}
	}
	return func() {
		if err := a.backend.Unlock(context.WithoutCancel(ctx), id); err != nil {
			fmt.Fprintf(a.s.Err, "Warning: could not release the state lock: %v\n", err)
		}
	}, nil
}

// closeBackend closes the state backend once the lock is released (etcd
// revokes its lease).
func (a *applyRun) closeBackend() {
	if err := a.backend.Close(); err != nil {
		fmt.Fprintf(a.s.Err, "Warning: %v\n", err)
	}
}

func (a *applyRun) loadState(ctx context.Context) error {
	st, err := a.backend.Load(ctx)
	if err != nil {
		return &exitError{code: ExitError, msg: err.Error()}
	}
	if st == nil {
		st = state.New(a.cfg.Project, state.NewLineage())
	}
	if st.Project != a.cfg.Project {
		return a.backend.otherProject(st.Project, a.cfg.Project)
	}
	a.st = st
	return nil
}

func (a *applyRun) makePlan(ctx context.Context) error {
	a.snap = probe.Probe(ctx, a.cfg, probe.Options{Timeout: a.opts.probeTimeout})
	replace, err := replaceSet(a.cfg, a.opts.replace)
	if err != nil {
		return err
	}
	plan, err := planner.Make(a.cfg, a.snap, a.st, planner.Options{Refreshed: true, Destroy: a.opts.destroy, Replace: replace})
	if err != nil {
		_, err = makePlanError(err, a.snap)
		return err
	}
	a.plan = plan
	if !a.opts.json {
		return render.PlanText(a.s.Out, plan, render.TextOptions{Color: a.opts.global.color(a.s.OutIsTerminal)})
	}
	return nil
}

// checkSaved refuses a saved plan that no longer matches the state or the
// hosts, saying exactly what changed.
func (a *applyRun) checkSaved(ctx context.Context, sp *planner.SavedPlan, name string) error {
	a.snap = probe.Probe(ctx, a.cfg, probe.Options{Timeout: a.opts.probeTimeout})
	lineage := a.st.Lineage
	if a.st.Serial == 0 && len(a.st.Instances) == 0 {
		lineage = sp.Plan.StateLineage
	}
	stale := planner.Staleness(sp.Plan, lineage, a.st.Serial, a.snap)
	stale = append(stale, roomTaken(sp.Plan, a.snap)...)
	if len(stale) > 0 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("the saved plan %s is stale, so nothing was applied:\n  - %s\nMake a new plan with dockplan plan -out %s.",
			name, strings.Join(stale, "\n  - "), name)}
	}
	a.plan = sp.Plan
	return nil
}

// roomTaken lists the hosts where what a saved plan adds no longer fits,
// because other containers took the room it counted on since it was made
// (the project's own containers are in the fingerprint). A change that
// still fits does not make the plan stale: on a shared host that happens
// all the time.
func roomTaken(plan *planner.Plan, snap *probe.Snapshot) []string {
	var out []string
	for _, hp := range plan.Hosts {
		hf := snap.Host(hp.Name)
		if !hp.Reachable || !plan.Refreshed || hf == nil || !hf.Reachable {
			continue // Staleness reports a host that stopped answering
		}
		for _, r := range []struct {
			what                 string
			before, after, limit int64 // as planned
			allocated, capacity  int64 // now
			format               func(int64) string
		}{
			{"CPU", hp.Before.MilliCPU, hp.After.MilliCPU, hp.Capacity.MilliCPU, hf.Allocated.MilliCPU, hf.Capacity.MilliCPU, hclspec.FormatMilliCPU},
			{"memory", hp.Before.MemoryBytes, hp.After.MemoryBytes, hp.Capacity.MemoryBytes, hf.Allocated.MemoryBytes, hf.Capacity.MemoryBytes, hclspec.FormatBytes},
		} {
			adds := r.after - r.before
			if adds <= 0 || r.allocated <= r.before || r.allocated+adds <= r.capacity {
				continue
			}
			out = append(out, fmt.Sprintf("%s: the plan adds %s of %s there, but other containers took the room: %s free now, %s when planned",
				hp.Name, r.format(adds), r.what, r.format(max(0, r.capacity-r.allocated)), r.format(max(0, r.limit-r.before))))
		}
	}
	return out
}

func (a *applyRun) confirm() error {
	verb := "perform these actions"
	if a.opts.destroy {
		verb = "destroy every container of project " + a.cfg.Project
	}
	fmt.Fprintf(a.s.Out, "\nDo you want to %s?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", verb)
	line, _ := bufio.NewReader(a.s.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return &exitError{code: ExitError, msg: "apply cancelled: the answer was not 'yes'; nothing was changed"}
	}
	fmt.Fprintln(a.s.Out)
	return nil
}

// makePlanError explains a planner failure. When hosts did not answer, it
// says why each did: "node1 unreachable" alone hides a refused port, a
// timeout or a missing TLS file, and the plan's own warnings are never
// printed when there is no plan.
func makePlanError(err error, snap *probe.Snapshot) (*planner.Plan, error) {
	var why strings.Builder
	for _, hf := range snap.Unreachable() {
		fmt.Fprintf(&why, "\nHost %s did not answer: %s", hf.Name, hf.Error)
	}
	advice := "\nFree capacity (dockplan hosts shows it), relax the placement rules, or lower the requests."
	if why.Len() > 0 {
		advice = "\nMake the hosts answer, free capacity (dockplan hosts shows both), relax the placement rules, or lower the requests."
	}
	var pe *planner.PlaceError
	if ok := asPlaceError(err, &pe); ok {
		return nil, &exitError{code: ExitError, msg: "cannot place every container:\n" + pe.Error() + why.String() + advice}
	}
	return nil, &exitError{code: ExitError, msg: err.Error() + why.String()}
}

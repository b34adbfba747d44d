package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dockplan/dockplan/applier"
	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/state"
)

// rescheduler is the Reschedule of `reconcile -daemon -reschedule-after`:
// it moves the instances of hosts that stopped answering to hosts that
// answer, planning the move with the planner (placement by free capacity,
// the lost host's instances and the containers that link to them) and
// carrying it out with the applier, as `dockplan apply` would. The daemon
// calls it holding the state lock.
type rescheduler struct {
	opts    *reconcileOptions
	s       Streams
	backend state.Backend
	log     *slog.Logger
}

func (rs *rescheduler) reschedule(ctx context.Context, st *state.State, lost []string) (*state.State, error) {
	cfg, _, diags := hclspec.Load(".", rs.opts.vars.loadOptions(ctx, rs.s.Environ))
	if diags.HasErrors() {
		return nil, fmt.Errorf("the configuration does not load, so nothing was moved: %s", diags.Error())
	}
	if cfg.Project != st.Project {
		return nil, fmt.Errorf("the configuration is project %q but the state is project %q, so nothing was moved", cfg.Project, st.Project)
	}
	snap := probe.Probe(ctx, cfg, probe.Options{Timeout: rs.opts.probeTimeout})
	set := map[string]bool{}
	for _, h := range lost {
		if hf := snap.Host(h); hf == nil || !hf.Reachable {
			set[h] = true
		}
	}
	if len(set) == 0 {
		return st, nil // they answer again: their instances stay
	}
	// Only the move, never pending changes of the configuration: those are
	// for a reviewed plan and apply.
	pending, err := planner.Make(cfg, snap, st, planner.Options{Refreshed: true})
	if err != nil {
		return nil, fmt.Errorf("the configuration cannot be planned as it is, so nothing was moved: %w", err)
	}
	if pending.Changes() {
		return nil, fmt.Errorf("the configuration or the hosts differ from the state (%s), so nothing was moved: run dockplan plan and apply first",
			summaryWords(pending.Summary))
	}
	plan, err := planner.Make(cfg, snap, st, planner.Options{Refreshed: true, Lost: set})
	if err != nil {
		return nil, fmt.Errorf("the lost hosts' instances fit nowhere else: %w", err)
	}
	if !plan.Changes() {
		return st, nil
	}
	rs.log.Info("moving instances", "plan", summaryWords(plan.Summary))
	engines := dialHosts(ctx, cfg.Hosts, func(h *hclspec.Host) bool {
		hf := snap.Host(h.Name)
		return hf != nil && hf.Reachable
	}, rs.opts.probeTimeout, func(h *hclspec.Host, err error) {
		rs.log.Warn("cannot connect", "host", h.Name, "error", err.Error())
	})
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	// The engine of this machine, when images are copied from it.
	// Not reaching it is not logged here: the pull steps that need it fail
	// and say so.
	local := dialLocal(ctx, plan, rs.s.Environ, rs.opts.probeTimeout, func(error) {})
	if local != nil {
		defer local.Close()
	}
	return st, rs.apply(ctx, cfg, plan, st, snap, engines, local)
}

func (rs *rescheduler) apply(ctx context.Context, cfg *hclspec.Config, plan *planner.Plan, st *state.State, snap *probe.Snapshot, engines map[string]engine.Engine, local engine.Engine) error {
	res := applier.Apply(ctx, cfg, plan, st, applier.Options{
		Engines: engines, Local: local, HostAddress: reachAddresses(snap), Parallelism: applier.DefaultParallelism,
		Save:         rs.backend.Save,
		OnEvent:      rs.event,
		RegistryAuth: applier.DockerConfigAuth(rs.s.Environ),
	})
	switch {
	case res.SaveErr != nil:
		return fmt.Errorf("saving the state failed, so no further step was started: %w", res.SaveErr)
	case res.Interrupted:
		return errors.New("stopped before every instance was moved")
	case res.Err != nil:
		return res.Err
	}
	return nil
}

// event logs the applier's finished and failed steps.
func (rs *rescheduler) event(e applier.Event) {
	who := e.Address
	if who == "" {
		who = e.StepID
	}
	switch e.Phase {
	case applier.Done:
		rs.log.Info("step complete", "step", e.StepID, "address", who, "host", e.Host, "duration", e.Elapsed.Round(1e6))
	case applier.Failed:
		rs.log.Error("step failed", "step", e.StepID, "address", who, "host", e.Host, "error", e.Err)
	case applier.Skipped:
		rs.log.Warn("step skipped", "step", e.StepID, "address", who, "error", e.Err)
	}
}

// summaryWords says what a plan does in words: "1 to move, 2 to replace".
func summaryWords(s planner.Summary) string {
	var parts []string
	for _, c := range []struct {
		n    int
		verb string
	}{{s.Create, "create"}, {s.Start, "start"}, {s.Update, "update"}, {s.Replace, "replace"}, {s.Move, "move"}, {s.Delete, "delete"}, {s.Adopt, "adopt"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", c.n, c.verb))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dockplan/dockplan/applier"
	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/render"
	"github.com/dockplan/dockplan/state"
)

func asPlaceError(err error, target **planner.PlaceError) bool { return errors.As(err, target) }

// apply connects to the hosts the plan touches and carries it out.
func (a *applyRun) apply(ctx context.Context) error {
	engines, closeAll := a.dialHosts(ctx)
	defer closeAll()
	local := dialLocal(ctx, a.plan, a.s.Environ, a.opts.probeTimeout, func(err error) { fmt.Fprintf(a.s.Err, "Warning: %v\n", err) })
	if local != nil {
		defer local.Close()
	}
	start := time.Now()
	res := applier.Apply(ctx, a.cfg, a.plan, a.st, applier.Options{
		Engines: engines, Local: local, HostAddress: reachAddresses(a.snap), Parallelism: a.opts.parallelism,
		Save:         func(ctx context.Context, st *state.State) error { return a.backend.Save(ctx, st) },
		OnEvent:      a.out.event,
		RegistryAuth: applier.DockerConfigAuth(a.s.Environ),
	})
	a.out.summary(res, time.Since(start), a.opts.destroy)
	if !a.opts.destroy {
		a.printOutputs()
	}
	if !a.opts.json {
		// Repeated after the summary, so "Apply complete!" never hides what
		// this apply could not check (an unreachable host, say).
		for _, w := range a.plan.Warnings {
			fmt.Fprintf(a.s.Err, "Warning: %s\n", w)
		}
	}
	switch {
	case res.SaveErr != nil:
		return &exitError{code: ExitError, msg: fmt.Sprintf("saving the state failed, so no further step was started: %v\n%s; containers created after it carry dockplan's labels and the next plan adopts them.",
			res.SaveErr, a.backend.lastGood())}
	case res.Interrupted:
		return exitWith(ExitInterrupted)
	case res.Err != nil:
		return &exitError{code: ExitError, msg: res.Err.Error() + skippedNote(res)}
	}
	return nil
}

// printOutputs prints the outputs as the state now makes them known, as
// Terraform does after an apply; an output that cannot be evaluated is a
// warning, since the apply itself is done.
func (a *applyRun) printOutputs() {
	if len(a.cfg.Outputs) == 0 {
		return
	}
	outs, diags := planner.Outputs(a.cfg, a.st)
	if diags.HasErrors() {
		fmt.Fprintf(a.s.Err, "Warning: the outputs could not be evaluated: %s\n", diags.Error())
		return
	}
	a.out.outputs(outs)
}

func skippedNote(res *applier.Result) string {
	if len(res.Skipped) == 0 {
		return ""
	}
	return fmt.Sprintf("\nSkipped because a step they depend on failed: %s.\nFix the cause and run apply again: it converges.", strings.Join(res.Skipped, ", "))
}

// dialHosts connects to every reachable host the plan acts on. A host that
// fails to connect gets no engine: its steps fail naming it, the others go
// on.
func (a *applyRun) dialHosts(ctx context.Context) (map[string]engine.Engine, func()) {
	need := map[string]bool{}
	for _, s := range a.plan.Steps {
		need[s.Host] = true
		if s.FromHost != "" {
			need[s.FromHost] = true
		}
	}
	// A step waits for its dependencies to be healthy on their hosts, which
	// may have no step of their own.
	placed := map[string]string{}
	for addr, si := range a.st.Instances {
		placed[addr] = si.Host
	}
	for _, s := range a.plan.Steps {
		if s.Address != "" && s.Action != planner.Delete {
			placed[s.Address] = s.Host
		}
	}
	for _, s := range a.plan.Steps {
		for _, addr := range s.WaitHealthy {
			if h := placed[addr]; h != "" {
				need[h] = true
			}
		}
	}
	engines := dialHosts(ctx, a.cfg.Hosts, func(h *hclspec.Host) bool { return need[h.Name] }, a.opts.probeTimeout,
		func(_ *hclspec.Host, err error) { fmt.Fprintf(a.s.Err, "Warning: %v\n", err) })
	return engines, func() {
		for _, e := range engines {
			e.Close()
		}
	}
}

// progress prints apply events: plain lines (Terraform's words), or JSON
// lines with a format version first.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	enc  *json.Encoder
}

// ProgressFormatVersion is the format_version of -json apply output.
const ProgressFormatVersion = "1.0"

func newProgress(s Streams, asJSON bool) *progress {
	p := &progress{w: s.Out, json: asJSON}
	if asJSON {
		p.enc = json.NewEncoder(s.Out)
		_ = p.enc.Encode(map[string]string{"type": "version", "format_version": ProgressFormatVersion})
	}
	return p
}

func (p *progress) event(e applier.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		_ = p.enc.Encode(struct {
			Type string `json:"type"`
			applier.Event
		}{"step", e})
		return
	}
	fmt.Fprintln(p.w, eventLine(e))
}

func eventLine(e applier.Event) string {
	who := e.Address
	if who == "" {
		who = e.StepID
	}
	noun, past := actionWords(e.Action)
	switch e.Phase {
	case applier.Started:
		return fmt.Sprintf("%s: %s... [%s]", who, noun, e.Host)
	case applier.Progress:
		line := fmt.Sprintf("%s: %s (%s elapsed)", who, upperFirst(e.Message), e.Elapsed.Round(time.Second))
		if e.BytesTotal > 0 {
			line += fmt.Sprintf(" %s/%s", hclspec.FormatBytes(e.BytesDone), hclspec.FormatBytes(e.BytesTotal))
		} else if e.BytesDone > 0 {
			line += " " + hclspec.FormatBytes(e.BytesDone)
		}
		return line
	case applier.Done:
		return fmt.Sprintf("%s: %s after %s [%s]", who, past, e.Elapsed.Round(100*time.Millisecond), e.Host)
	case applier.Failed:
		return fmt.Sprintf("%s: Failed after %s [%s]: %s", who, e.Elapsed.Round(100*time.Millisecond), e.Host, e.Err)
	default:
		return fmt.Sprintf("%s: Skipped: %s", who, e.Err)
	}
}

func actionWords(a planner.Action) (string, string) {
	switch a {
	case planner.Create:
		return "Creating", "Creation complete"
	case planner.Replace:
		return "Replacing", "Replacement complete"
	case planner.Move:
		return "Moving", "Move complete"
	case planner.Delete:
		return "Deleting", "Deletion complete"
	case planner.Start:
		return "Starting", "Start complete"
	case planner.Update:
		return "Updating", "Update complete"
	case planner.Pull:
		return "Pulling", "Pull complete"
	}
	return "Adopting", "Adoption complete"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (p *progress) noChanges() {
	if p.json {
		_ = p.enc.Encode(map[string]any{"type": "summary", "changes": false})
		return
	}
	fmt.Fprintln(p.w, "\nNo changes. The hosts match the configuration.")
}

// outputs prints the outputs after the summary: "Outputs:" and a line
// each, or one JSON event.
func (p *progress) outputs(outs []planner.OutputValue) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		all, err := render.OutputsJSON(outs)
		if err == nil {
			_ = p.enc.Encode(map[string]any{"type": "outputs", "outputs": all})
		}
		return
	}
	fmt.Fprint(p.w, "\nOutputs:\n\n")
	_ = render.OutputsText(p.w, outs)
}

func (p *progress) summary(res *applier.Result, took time.Duration, destroy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := res.Counts
	if p.json {
		_ = p.enc.Encode(map[string]any{"type": "summary", "counts": c, "failed": res.Failed, "skipped": res.Skipped,
			"elapsed_ns": took, "interrupted": res.Interrupted})
		return
	}
	word := "Apply"
	if destroy {
		word = "Destroy"
	}
	status := "complete!"
	if len(res.Failed) > 0 || len(res.Skipped) > 0 || res.Interrupted {
		status = "incomplete:"
	}
	fmt.Fprintf(p.w, "\n%s %s %d created, %d replaced, %d deleted", word, status, c.Create+c.Move, c.Replace, c.Delete)
	for _, extra := range []struct {
		n    int
		word string
	}{{c.Update, "updated"}, {c.Start, "started"}, {c.Pull, "pulled"}, {c.Adopt, "adopted"}, {len(res.Failed), "failed"}, {len(res.Skipped), "skipped"}} {
		if extra.n > 0 {
			fmt.Fprintf(p.w, ", %d %s", extra.n, extra.word)
		}
	}
	fmt.Fprintf(p.w, " in %.1fs.\n", took.Seconds())
}

package render

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
)

// errNilPlan is returned by the plan renderers when given no plan.
var errNilPlan = errors.New("render: no plan to render")

// noChanges is what every format says of a plan without steps.
const noChanges = "No changes. The hosts match the configuration."

// refreshNote is said at the top of a plan made with -refresh=false.
const refreshNote = "This plan was made with -refresh=false, from the state and the configuration alone: " +
	"no host was contacted, so containers changed or removed by hand are not seen and images are not checked."

// PlanText writes a plan as Terraform draws one: notes and warnings, the
// symbols it uses, the steps grouped by host (in the plan's host order,
// each host's steps in plan order), a capacity table, and one summary
// line. Colour only when opts.Color.
func PlanText(w io.Writer, p *planner.Plan, opts TextOptions) error {
	if p == nil {
		return errNilPlan
	}
	bw := bufio.NewWriter(w)
	writeTextNotes(bw, p, opts)
	if !p.Changes() {
		fmt.Fprintln(bw, noChanges)
		return bw.Flush()
	}
	writeLegend(bw, p.Steps, opts)
	if p.Project != "" {
		fmt.Fprintf(bw, "dockplan will perform the following actions in project %q:\n", clean(p.Project))
	} else {
		fmt.Fprintln(bw, "dockplan will perform the following actions:")
	}
	for _, g := range groupByHost(p) {
		if len(g.entries) > 0 {
			writeTextGroup(bw, g, opts)
		}
	}
	if err := writeCapacityTable(bw, p.Hosts); err != nil {
		return err
	}
	fmt.Fprintf(bw, "\n%s\n", summaryLine(p.Summary))
	return bw.Flush()
}

// writeTextNotes writes the -refresh=false note and the warnings, one line
// each, followed by a blank line when there were any.
func writeTextNotes(w io.Writer, p *planner.Plan, opts TextOptions) {
	if !p.Refreshed {
		fmt.Fprintf(w, "%s %s\n", paint(opts, "\x1b[1m", "Note:"), refreshNote)
	}
	for _, warning := range p.Warnings {
		fmt.Fprintf(w, "%s %s\n", paint(opts, "\x1b[1;33m", "Warning:"), clean(warning))
	}
	if !p.Refreshed || len(p.Warnings) > 0 {
		fmt.Fprintln(w)
	}
}

// legendRow is one symbol the text form may use and what it means.
type legendRow struct{ sym, label string }

// legendRows are in the order the legend prints them.
var legendRows = []legendRow{
	{"+", "create"},
	{"~", "update in place"},
	{"~", "start"},
	{"-", "delete"},
	{"-/+", "delete, then create the replacement"},
	{"+/-", "create the replacement, then delete the old container"},
	{"↓", "pull an image"},
	{"=", "adopt into the state (nothing changes on the host)"},
}

func legendLabel(s *planner.Step) string {
	switch s.Action {
	case planner.Create:
		return "create"
	case planner.Update:
		return "update in place"
	case planner.Start:
		return "start"
	case planner.Delete:
		return "delete"
	case planner.Pull:
		return "pull an image"
	case planner.Adopt:
		return "adopt into the state (nothing changes on the host)"
	}
	if stepSymbol(s) == "+/-" {
		return "create the replacement, then delete the old container"
	}
	return "delete, then create the replacement"
}

// writeLegend lists the symbols the plan uses, as Terraform does; two
// meanings of one symbol share a line.
func writeLegend(w io.Writer, steps []*planner.Step, opts TextOptions) {
	used := map[legendRow]bool{}
	for _, s := range steps {
		used[legendRow{stepSymbol(s), legendLabel(s)}] = true
	}
	fmt.Fprintln(w, "Actions are indicated with the following symbols:")
	for i := 0; i < len(legendRows); i++ {
		row := legendRows[i]
		if !used[row] {
			continue
		}
		labels := []string{row.label}
		for i+1 < len(legendRows) && legendRows[i+1].sym == row.sym {
			i++
			if used[legendRows[i]] {
				labels = append(labels, legendRows[i].label)
			}
		}
		fmt.Fprintf(w, "%s %s\n", colorSym(opts, fmt.Sprintf("%3s", row.sym)), strings.Join(labels, " or "))
	}
	fmt.Fprintln(w)
}

// hostGroup is what the plan does on one host.
type hostGroup struct {
	name string
	// host is nil for a host the configuration no longer declares.
	host    *planner.HostPlan
	entries []groupEntry
}

// groupEntry is a step drawn under a host, or a pointer to a move away
// from the host, which is drawn under the move's new host.
type groupEntry struct {
	step      *planner.Step
	movedAway bool
}

// groupByHost sorts the steps by host, keeping plan order within a host.
// The hosts come in the plan's order, then hosts the configuration no
// longer declares in the order their first step appears. A delete goes
// under the host it deletes from; a move under its new host, with a
// pointer to it under the old one.
func groupByHost(p *planner.Plan) []*hostGroup {
	var groups []*hostGroup
	byName := map[string]*hostGroup{}
	for _, h := range p.Hosts {
		g := &hostGroup{name: h.Name, host: h}
		groups = append(groups, g)
		byName[h.Name] = g
	}
	for _, s := range p.Steps {
		name := s.Host
		if s.Action == planner.Delete && s.FromHost != "" {
			name = s.FromHost
		}
		g := byName[name]
		if g == nil {
			g = &hostGroup{name: name}
			groups = append(groups, g)
			byName[name] = g
		}
		g.entries = append(g.entries, groupEntry{step: s})
		if s.Action == planner.Move && s.FromHost != s.Host && byName[s.FromHost] != nil && byName[s.FromHost].host != nil {
			from := byName[s.FromHost]
			from.entries = append(from.entries, groupEntry{step: s, movedAway: true})
		}
	}
	return groups
}

// summary says what happens on the host: the counts of the steps drawn
// under it, then the moves away from it, or "no changes".
func (g *hostGroup) summary() string {
	var steps []*planner.Step
	away := 0
	for _, e := range g.entries {
		if e.movedAway {
			away++
		} else {
			steps = append(steps, e.step)
		}
	}
	parts := summaryParts(countSteps(steps), false)
	if away > 0 {
		parts = append(parts, fmt.Sprintf("%d to move away", away))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}

// title names the host and says what happens there.
func (g *hostGroup) title() string {
	name := clean(g.name)
	switch {
	case g.host == nil:
		name += " (not in the configuration)"
	case !g.host.Reachable:
		name += " (unreachable)"
	}
	return name
}

func writeTextGroup(w io.Writer, g *hostGroup, opts TextOptions) {
	fmt.Fprintf(w, "\n%s\n", paint(opts, "\x1b[1m", "Host "+g.title()+": "+g.summary()))
	for _, e := range g.entries {
		fmt.Fprintln(w)
		for _, l := range entryLines(e) {
			fmt.Fprintln(w, l.human(opts))
		}
	}
}

// entryLines draws a group entry.
func entryLines(e groupEntry) []planLine {
	if e.movedAway {
		return []planLine{commentLine(2, fmt.Sprintf("# %s will be moved to %s (shown under %s)",
			clean(e.step.Address), clean(e.step.Host), clean(e.step.Host)))}
	}
	return stepLines(e.step)
}

// human writes the line as the text form draws it.
func (l planLine) human(opts TextOptions) string {
	indent := strings.Repeat(" ", l.col)
	switch {
	case l.symbolic:
		return indent + colorSym(opts, fmt.Sprintf("%3s", l.sym)) + " " + l.text
	case l.bold:
		return indent + paint(opts, "\x1b[1m", l.text)
	}
	return indent + l.text
}

// colorSym colours each sign of a symbol: + green, ~ yellow, - red.
func colorSym(opts TextOptions, sym string) string {
	if !opts.Color {
		return sym
	}
	var b strings.Builder
	for _, r := range sym {
		switch r {
		case '+':
			b.WriteString("\x1b[32m+\x1b[0m")
		case '~':
			b.WriteString("\x1b[33m~\x1b[0m")
		case '-':
			b.WriteString("\x1b[31m-\x1b[0m")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeCapacityTable writes every host's allocated CPU and memory before
// and after the plan, and its capacity.
func writeCapacityTable(w io.Writer, hosts []*planner.HostPlan) error {
	if len(hosts) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nAllocated CPU and memory on each host, before → after this plan:")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST\tCPU BEFORE → AFTER\tCPU CAPACITY\tMEMORY BEFORE → AFTER\tMEMORY CAPACITY")
	for _, h := range hosts {
		if !h.Reachable {
			fmt.Fprintf(tw, "  %s\tunreachable: not checked, nothing placed there\n", clean(h.Name))
			continue
		}
		cpu, mem := capacityCells(h)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", clean(h.Name), cpu[0], cpu[1], mem[0], mem[1])
	}
	return tw.Flush()
}

// capacityCells are a host's CPU and memory cells: "before → after" and
// the capacity ("unknown" when zero), with "(over capacity)" when the
// plan leaves more allocated than the host has.
func capacityCells(h *planner.HostPlan) (cpu, mem [2]string) {
	cell := func(before, after, capacity int64, format func(int64) string) [2]string {
		change := format(before) + " → " + format(after)
		if capacity <= 0 {
			return [2]string{change, "unknown"}
		}
		if after > capacity {
			change += " (over capacity)"
		}
		return [2]string{change, format(capacity)}
	}
	cpu = cell(h.Before.MilliCPU, h.After.MilliCPU, h.Capacity.MilliCPU, hclspec.FormatMilliCPU)
	mem = cell(h.Before.MemoryBytes, h.After.MemoryBytes, h.Capacity.MemoryBytes, hclspec.FormatBytes)
	return cpu, mem
}

// countSteps counts steps by action, as the planner's Summary does.
func countSteps(steps []*planner.Step) planner.Summary {
	var sum planner.Summary
	for _, s := range steps {
		sum.Add(s.Action)
	}
	return sum
}

// summaryCount is one action's count in a summary.
type summaryCount struct {
	action string
	n      int
	// always: printed even when zero (Terraform's four).
	always bool
}

// summaryCounts lists a summary's counts in the order every format prints
// them: create, update, replace, delete (always), then start, move, pull,
// adopt (only when not zero).
func summaryCounts(sum planner.Summary) []summaryCount {
	return []summaryCount{
		{"create", sum.Create, true}, {"update", sum.Update, true},
		{"replace", sum.Replace, true}, {"delete", sum.Delete, true},
		{"start", sum.Start, false}, {"move", sum.Move, false},
		{"pull", sum.Pull, false}, {"adopt", sum.Adopt, false},
	}
}

// summaryParts are "4 to create", …: every count that is always printed
// (when all is set) or is not zero.
func summaryParts(sum planner.Summary, all bool) []string {
	var parts []string
	for _, c := range summaryCounts(sum) {
		if c.n > 0 || (all && c.always) {
			parts = append(parts, fmt.Sprintf("%d to %s", c.n, c.action))
		}
	}
	return parts
}

// summaryLine is the plan's one summary line:
// "Plan: 4 to create, 1 to update, 1 to replace, 0 to delete, 1 to move."
func summaryLine(sum planner.Summary) string {
	return "Plan: " + strings.Join(summaryParts(sum, true), ", ") + "."
}

package render

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/dockplan/dockplan/planner"
)

// PlanMarkdown writes a plan for a pull-request comment: a title with the
// summary, a table of counts by action, the notes and warnings as a
// blockquote, then one collapsed section per host holding the same step
// lines as the text form in a diff block (so that GitHub colours + and -)
// and the host's capacity before → after. Hosts come in the plan's order;
// those the configuration no longer declares follow.
func PlanMarkdown(w io.Writer, p *planner.Plan) error {
	if p == nil {
		return errNilPlan
	}
	bw := bufio.NewWriter(w)
	title := "Plan"
	if p.Project != "" {
		title += " for " + mdText(p.Project)
	}
	if !p.Changes() {
		fmt.Fprintf(bw, "### %s: no changes\n\n", title)
		writeMarkdownNotes(bw, p)
		fmt.Fprintln(bw, noChanges)
		return bw.Flush()
	}
	fmt.Fprintf(bw, "### %s: %s.\n\n", title, strings.Join(summaryParts(p.Summary, true), ", "))
	fmt.Fprintln(bw, "| Action | Count |")
	fmt.Fprintln(bw, "| --- | ---: |")
	for _, c := range summaryCounts(p.Summary) {
		if c.always || c.n > 0 {
			fmt.Fprintf(bw, "| %s | %d |\n", c.action, c.n)
		}
	}
	fmt.Fprintln(bw)
	writeMarkdownNotes(bw, p)
	for _, g := range groupByHost(p) {
		if g.host != nil || len(g.entries) > 0 {
			writeMarkdownGroup(bw, g)
		}
	}
	return bw.Flush()
}

// writeMarkdownNotes writes the -refresh=false note and the warnings as one
// blockquote, a paragraph each.
func writeMarkdownNotes(w io.Writer, p *planner.Plan) {
	var paras []string
	if !p.Refreshed {
		paras = append(paras, "**Note:** "+mdText(refreshNote))
	}
	for _, warning := range p.Warnings {
		paras = append(paras, "**Warning:** "+mdText(warning))
	}
	if len(paras) == 0 {
		return
	}
	fmt.Fprintf(w, "> %s\n\n", strings.Join(paras, "\n>\n> "))
}

// writeMarkdownGroup writes one host's collapsed section.
func writeMarkdownGroup(w io.Writer, g *hostGroup) {
	fmt.Fprintf(w, "<details><summary>%s — %s</summary>\n\n", html.EscapeString(g.title()), g.summary())
	if len(g.entries) > 0 {
		var lines []string
		for i, e := range g.entries {
			if i > 0 {
				lines = append(lines, "")
			}
			for _, l := range entryLines(e) {
				lines = append(lines, l.diff())
			}
		}
		fence := codeFence(lines)
		fmt.Fprintf(w, "%sdiff\n%s\n%s\n\n", fence, strings.Join(lines, "\n"), fence)
	}
	if g.host != nil {
		fmt.Fprintf(w, "%s\n\n", mdText(capacityLine(g.host)))
	}
	fmt.Fprint(w, "</details>\n\n")
}

// capacityLine says a host's allocated CPU and memory before → after the
// plan, and its capacity.
func capacityLine(h *planner.HostPlan) string {
	if !h.Reachable {
		return "Capacity: unreachable, not checked; nothing is placed there."
	}
	cpu, mem := capacityCells(h)
	return fmt.Sprintf("Capacity: CPU %s of %s, memory %s of %s allocated.", cpu[0], cpu[1], mem[0], mem[1])
}

// diff writes the line for a diff block: the sign of a one-sign symbol
// moves to the first column, where GitHub looks for it; the rest of the
// line keeps its place. Other lines are as in the text form.
func (l planLine) diff() string {
	if l.symbolic && (l.sym == "+" || l.sym == "-" || l.sym == "~") {
		return l.sym + strings.Repeat(" ", l.col+3) + l.text
	}
	return l.human(TextOptions{})
}

// codeFence returns a backtick fence longer than any run of backticks in
// lines, so no value can close the block early.
func codeFence(lines []string) string {
	longest := 0
	for _, l := range lines {
		run := 0
		for _, r := range l {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// mdText makes free text safe in Markdown prose: one line, HTML escaped,
// and the characters that start emphasis, links, code or table cells
// escaped with a backslash.
func mdText(s string) string {
	s = html.EscapeString(clean(s))
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]|#~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

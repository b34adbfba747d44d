package render

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dockplan/dockplan/planner"
)

// Placeholders printed instead of a value. Nothing else is ever printed
// for a value the plan does not hold.
const (
	sensitivePlaceholder = "(sensitive value)"
	unknownPlaceholder   = "(known after apply)"
	nullPlaceholder      = "null"
)

// maxRejectedShown caps the hosts listed on a step's "ruled out" line; the
// JSON form always has them all.
const maxRejectedShown = 5

// planLine is one line of a drawn step. Text, colour and the Markdown diff
// block are all written from the same lines.
type planLine struct {
	// col is the number of spaces before the line (or before the symbol
	// column of a symbol line).
	col int
	// symbolic lines have a symbol, right-aligned in three columns and
	// followed by a space, as Terraform draws "  +", "  ~" and "-/+".
	symbolic bool
	sym      string
	text     string
	// bold marks the "# web[1] will be created" line.
	bold bool
}

func commentLine(col int, text string) planLine { return planLine{col: col, text: text} }

// stepSymbol is the symbol a step's block is drawn with: the action's own,
// except that a replace or move that creates the new container first is
// "+/-", as Terraform draws create_before_destroy.
func stepSymbol(s *planner.Step) string {
	sym := s.Action.Symbol()
	if (s.Action == planner.Replace || s.Action == planner.Move) && s.CreateBeforeDestroy {
		return "+/-"
	}
	return sym
}

// headline says what happens to an instance, after its address.
func headline(s *planner.Step) string {
	switch s.Action {
	case planner.Create:
		return "will be created"
	case planner.Start:
		return "will be started"
	case planner.Update:
		return "will be updated in place"
	case planner.Replace:
		return "will be replaced"
	case planner.Move:
		return fmt.Sprintf("will be moved from %s to %s", clean(s.FromHost), clean(s.Host))
	case planner.Delete:
		return "will be deleted"
	case planner.Adopt:
		return "will be adopted into the state"
	}
	return "will be " + clean(s.Action.String())
}

// stepLines draws one step: a pull as one line, anything else as
// Terraform draws a resource, with its comments, attributes and brace.
func stepLines(s *planner.Step) []planLine {
	if s.Action == planner.Pull {
		how := "will be pulled to"
		if s.ImageSource == "local" {
			how = "will be copied from the local engine to"
		}
		return []planLine{{symbolic: true, sym: s.Action.Symbol(),
			text: fmt.Sprintf("image %s %s %s", strconv.Quote(s.Image), how, clean(s.Host))}}
	}
	addr := clean(s.Address)
	lines := []planLine{{col: 2, text: "# " + addr + " " + headline(s), bold: true}}
	lines = append(lines, noteLines(s)...)
	lines = append(lines, planLine{symbolic: true, sym: stepSymbol(s), text: "container " + strconv.Quote(s.Address) + " {"})
	lines = append(lines, attrLines(s)...)
	return append(lines, commentLine(4, "}"))
}

// noteLines are the comment lines above a step's block: its reason, where
// it was placed and why, and what it waits for.
func noteLines(s *planner.Step) []planLine {
	var lines []planLine
	switch {
	case s.Reason != "":
		lines = append(lines, commentLine(2, "# ("+clean(s.Reason)+")"))
	case len(s.ForcedBy) > 0:
		lines = append(lines, commentLine(2, "# (forces replacement: "+clean(strings.Join(s.ForcedBy, ", "))+")"))
	}
	if pn := s.Placement; pn != nil {
		lines = append(lines, commentLine(2, "# "+placementText(s.Host, pn)))
		if pn.RejectedCount > 0 || len(pn.Rejected) > 0 {
			lines = append(lines, commentLine(2, "# "+rejectedText(pn)))
		}
	}
	if len(s.WaitHealthy) > 0 {
		lines = append(lines, commentLine(2, "# (waits until "+clean(strings.Join(s.WaitHealthy, ", "))+" "+plural(len(s.WaitHealthy), "is", "are")+" healthy)"))
	}
	return lines
}

// placementText says why a host was chosen: its score and the runner-up's.
func placementText(host string, pn *planner.PlacementNote) string {
	score := "score"
	if pn.Strategy != "" {
		score = clean(pn.Strategy) + " score"
	}
	best, next := scores(pn.Score, pn.RunnerUpScore)
	var other string
	switch {
	case pn.RunnerUp == "" && (pn.RejectedCount > 0 || len(pn.Rejected) > 0):
		other = "no other host fits"
	case pn.RunnerUp == "":
		other = "the only host"
	case pn.Score == pn.RunnerUpScore:
		other = fmt.Sprintf("runner-up %s %s, a tie broken by host name", clean(pn.RunnerUp), next)
	default:
		other = fmt.Sprintf("runner-up %s %s", clean(pn.RunnerUp), next)
	}
	return fmt.Sprintf("placed on %s: %s %s (%s)", clean(host), score, best, other)
}

// scores formats two scores with two decimals, or four when two would
// show different scores as equal.
func scores(a, b float64) (string, string) {
	for _, prec := range []int{2, 4} {
		sa, sb := strconv.FormatFloat(a, 'f', prec, 64), strconv.FormatFloat(b, 'f', prec, 64)
		if sa != sb || a == b {
			return sa, sb
		}
	}
	return strconv.FormatFloat(a, 'g', -1, 64), strconv.FormatFloat(b, 'g', -1, 64)
}

// rejectedText lists the hosts placement ruled out, with every reason, at
// most maxRejectedShown of them; beyond that, and when the note only
// counts them (the planner lists them for small fleets only), it says
// how many more.
func rejectedText(pn *planner.PlacementNote) string {
	var parts []string
	for i, r := range pn.Rejected {
		if i == maxRejectedShown {
			break
		}
		parts = append(parts, clean(r.Host)+": "+clean(strings.Join(r.Reasons, ", ")))
	}
	total := max(pn.RejectedCount, len(pn.Rejected))
	switch more := total - len(parts); {
	case len(parts) == 0:
		return fmt.Sprintf("ruled out %d other %s", total, plural(total, "host", "hosts"))
	case more > 0:
		parts = append(parts, fmt.Sprintf("and %d more %s", more, plural(more, "host", "hosts")))
	}
	return "ruled out " + strings.Join(parts, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// attr is one attribute line before alignment.
type attr struct {
	sym, name, value string
	forces           bool
}

// attrLines draws a step's attributes, the container's id and name first,
// with the "=" signs aligned as Terraform aligns them.
func attrLines(s *planner.Step) []planLine {
	attrs := identityAttrs(s)
	for _, ch := range s.Changes {
		attrs = append(attrs, changeAttr(s.Action, ch))
	}
	width := 0
	for _, a := range attrs {
		width = max(width, utf8.RuneCountInString(a.name))
	}
	lines := make([]planLine, 0, len(attrs))
	for _, a := range attrs {
		text := a.name + strings.Repeat(" ", width-utf8.RuneCountInString(a.name)) + " = " + a.value
		if a.forces {
			text += " # forces replacement"
		}
		lines = append(lines, planLine{col: 4, symbolic: true, sym: a.sym, text: text})
	}
	return lines
}

// identityAttrs are the container's id and Docker name as the step
// changes them: a new container's id is known only after apply.
func identityAttrs(s *planner.Step) []attr {
	id := shortID(s.OldContainerID)
	var out []attr
	switch s.Action {
	case planner.Create:
		out = append(out, attr{sym: "+", name: "id", value: unknownPlaceholder})
	case planner.Replace, planner.Move:
		if id == "" {
			out = append(out, attr{sym: "+", name: "id", value: unknownPlaceholder})
		} else {
			out = append(out, attr{sym: "~", name: "id", value: strconv.Quote(id) + " -> " + unknownPlaceholder})
		}
	case planner.Delete:
		if id != "" {
			out = append(out, attr{sym: "-", name: "id", value: strconv.Quote(id) + " -> " + nullPlaceholder})
		}
	default:
		if id != "" {
			out = append(out, attr{name: "id", value: strconv.Quote(id)})
		}
	}
	if s.Name != "" {
		switch s.Action {
		case planner.Create:
			out = append(out, attr{sym: "+", name: "name", value: strconv.Quote(s.Name)})
		case planner.Delete:
			out = append(out, attr{sym: "-", name: "name", value: strconv.Quote(s.Name) + " -> " + nullPlaceholder})
		default:
			out = append(out, attr{name: "name", value: strconv.Quote(s.Name)})
		}
	}
	return out
}

// shortID shortens a Docker container ID to the 12 characters docker ps
// shows.
func shortID(id string) string {
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// changeAttr draws one attribute change. A sensitive change never shows
// its values, even if the plan carried them; as sensitive values hide
// whether the attribute was there before, its symbol follows the action.
func changeAttr(action planner.Action, ch planner.AttrChange) attr {
	a := attr{name: clean(ch.Path), forces: ch.ForcesReplacement}
	if ch.Sensitive {
		a.value = sensitivePlaceholder
		switch action {
		case planner.Create:
			a.sym = "+"
		case planner.Delete:
			a.sym, a.value = "-", sensitivePlaceholder+" -> "+nullPlaceholder
		default:
			a.sym = "~"
		}
		return a
	}
	hasAfter := ch.After != nil || ch.AfterUnknown
	after := nullPlaceholder
	switch {
	case ch.AfterUnknown:
		after = unknownPlaceholder
	case ch.After != nil:
		after = value(ch.Path, *ch.After)
	}
	switch {
	case ch.Before == nil && hasAfter:
		a.sym, a.value = "+", after
	case ch.Before == nil:
		a.sym, a.value = "~", nullPlaceholder
	case !hasAfter:
		a.sym, a.value = "-", value(ch.Path, *ch.Before)+" -> "+nullPlaceholder
	case ch.After != nil && *ch.After == *ch.Before:
		a.value = after
	default:
		a.sym, a.value = "~", value(ch.Path, *ch.Before)+" -> "+after
	}
	return a
}

// preformatted are the attributes whose values the planner already writes
// as lists of quoted strings ("command": ["sh", "-c"]) or as bools; they
// are printed as they are rather than quoted again.
var preformatted = []string{"command", "entrypoint", "health", "cap_add", "cap_drop", "tmpfs", "read_only", "init", "ulimits", "sysctls", "logging"}

// value prints an attribute value: quoted, as Terraform prints strings,
// unless the planner already formatted it; never with raw control
// characters.
func value(path, v string) string {
	for _, p := range preformatted {
		if path == p && printable(v) {
			return v
		}
	}
	return strconv.Quote(v)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// clean makes free text (reasons, warnings, names) safe to print on one
// line: line breaks and tabs become spaces, other control characters and
// invalid bytes become U+FFFD, so no text can move the cursor or colour
// the terminal.
func clean(s string) string {
	if printable(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case !unicode.IsPrint(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

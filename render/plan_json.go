package render

import (
	"encoding/json"
	"io"

	"github.com/dockplan/dockplan/planner"
)

// PlanJSON writes the plan as the JSON document docs/plan-format.md
// describes, indented by two spaces. It writes a copy in which every
// sensitive change has no values, whatever the plan holds, and every list
// is [] rather than null; the plan itself is not changed.
func PlanJSON(w io.Writer, p *planner.Plan) error {
	if p == nil {
		return errNilPlan
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Values such as URLs with & stay readable; the output is JSON, not HTML.
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonPlan(p))
}

// jsonPlan copies what PlanJSON must adjust and shares the rest.
func jsonPlan(p *planner.Plan) *planner.Plan {
	out := *p
	if out.FormatVersion == "" {
		out.FormatVersion = planner.PlanFormatVersion
	}
	out.Warnings = nonNil(out.Warnings)
	out.Steps = make([]*planner.Step, len(p.Steps))
	for i, s := range p.Steps {
		cp := *s
		cp.DependsOn = nonNil(cp.DependsOn)
		cp.Changes = make([]planner.AttrChange, len(s.Changes))
		for j, ch := range s.Changes {
			if ch.Sensitive {
				ch.Before, ch.After = nil, nil
			}
			cp.Changes[j] = ch
		}
		out.Steps[i] = &cp
	}
	out.Hosts = make([]*planner.HostPlan, len(p.Hosts))
	for i, h := range p.Hosts {
		cp := *h
		if cp.Fingerprint.Containers == nil {
			cp.Fingerprint.Containers = []planner.FingerprintContainer{}
		}
		out.Hosts[i] = &cp
	}
	return &out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

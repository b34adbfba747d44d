package applier

import (
	"sort"
	"strings"
	"sync"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/state"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// minSecretLen is the shortest value that is hidden in errors: shorter ones
// would hide parts of ordinary words and IDs.
const minSecretLen = 4

// hidden replaces a secret in an error.
const hidden = "(sensitive value)"

// secrets are the sensitive values an apply knows: those of the sensitive
// variables, and the sensitive env and label values of every instance.
// Step errors are searched for them, because some quote what a container
// printed (the output of its health check), which may be one of them.
type secrets struct {
	mu       sync.Mutex
	values   map[string]bool
	replacer *strings.Replacer
}

func newSecrets(cfg *hclspec.Config, st *state.State) *secrets {
	s := &secrets{values: map[string]bool{}}
	for _, v := range cfg.Variables {
		if v.Sensitive && v.Value != cty.NilVal {
			s.addValue(v.Value)
		}
	}
	for _, si := range st.Instances {
		s.addSpec(si.Spec, si.Sensitive)
	}
	return s
}

// addValue adds every string and number inside v.
func (s *secrets) addValue(v cty.Value) {
	v, _ = v.UnmarkDeep()
	_ = cty.Walk(v, func(_ cty.Path, e cty.Value) (bool, error) {
		if e.IsNull() || !e.IsKnown() || !e.Type().IsPrimitiveType() || e.Type() == cty.Bool {
			return true, nil
		}
		if str, err := convert.Convert(e, cty.String); err == nil {
			s.add(str.AsString())
		}
		return true, nil
	})
}

// addSpec adds the values of spec's env and labels at the sensitive paths
// ("env.TOKEN", "labels.token"; "env" or "labels" for all of them), and
// the health check's words and the log options when those are sensitive.
func (s *secrets) addSpec(spec engine.ContainerSpec, paths []string) {
	sensitive := map[string]bool{}
	for _, p := range paths {
		sensitive[p] = true
	}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		if sensitive["env"] || sensitive["env."+k] {
			s.add(v)
		}
	}
	for k, v := range spec.Labels {
		if sensitive["labels"] || sensitive["labels."+k] {
			s.add(v)
		}
	}
	if sensitive["logging"] {
		for _, v := range spec.LogOptions {
			s.add(v)
		}
	}
	if sensitive["health"] && spec.Healthcheck != nil {
		for _, v := range spec.Healthcheck.Test {
			s.add(v)
		}
	}
}

// addResolved adds an instance's sensitive values once it is resolved.
func (s *secrets) addResolved(res *planner.Resolved) {
	s.addSpec(res.Spec, res.SensitivePaths())
}

func (s *secrets) add(v string) {
	if len(v) < minSecretLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.values[v] {
		s.values[v] = true
		s.replacer = nil
	}
}

// redact returns err with every secret in its text replaced; err itself
// when it holds none. The result still wraps err for errors.Is and As.
func (s *secrets) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if out := s.replace(msg); out != msg {
		return &redactedError{msg: out, err: err}
	}
	return err
}

func (s *secrets) replace(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.values) == 0 {
		return text
	}
	if s.replacer == nil {
		// Longest first: "Bearer <token>" goes before "<token>".
		vals := make([]string, 0, len(s.values))
		for v := range s.values {
			vals = append(vals, v)
		}
		sort.Slice(vals, func(i, j int) bool {
			if len(vals[i]) != len(vals[j]) {
				return len(vals[i]) > len(vals[j])
			}
			return vals[i] < vals[j]
		})
		pairs := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			pairs = append(pairs, v, hidden)
		}
		s.replacer = strings.NewReplacer(pairs...)
	}
	return s.replacer.Replace(text)
}

// redactedError is an error whose text had secrets in it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

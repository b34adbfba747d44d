package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// SavedFormatVersion is the format of saved plan files this build writes
// and reads.
const SavedFormatVersion = 1

// savedKind marks a file as a dockplan saved plan.
const savedKind = "dockplan-plan"

// SavedPlan is a plan file (`plan -out`): the plan and everything apply
// needs to carry it out without the working directory's files: the
// configuration sources and the variable values. It holds secrets (the
// variable values): files are written with mode 0600.
type SavedPlan struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"`
	Plan          *Plan  `json:"plan"`
	// Files are the configuration files by name.
	Files map[string]string `json:"files"`
	// Variables are the final variable values with their types.
	Variables map[string]SavedValue `json:"variables"`
	// Environ keeps the DOCKER_* variables the implicit host was read from.
	Environ []string `json:"environ"`
	// Checksum is SHA-256 over the other fields; it catches a truncated or
	// edited file (it is not a signature).
	Checksum string `json:"checksum"`
}

// SavedValue is one variable's value in go-cty's JSON form.
type SavedValue struct {
	Type  json.RawMessage `json:"type"`
	Value json.RawMessage `json:"value"`
}

// NewSavedPlan wraps a plan with the configuration sources and variables.
func NewSavedPlan(plan *Plan, cfg *hclspec.Config, environ []string) (*SavedPlan, error) {
	sp := &SavedPlan{FormatVersion: SavedFormatVersion, Kind: savedKind, Plan: plan,
		Files: map[string]string{}, Variables: map[string]SavedValue{}}
	for name, f := range cfg.Files {
		if strings.HasSuffix(name, hclspec.FileSuffix) {
			sp.Files[name] = string(f.Bytes)
		}
	}
	for _, v := range cfg.Variables {
		val, _ := v.Value.UnmarkDeep()
		ty, err := ctyjson.MarshalType(val.Type())
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		b, err := ctyjson.Marshal(val, val.Type())
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		sp.Variables[v.Name] = SavedValue{Type: ty, Value: b}
	}
	for _, kv := range environ {
		for _, name := range []string{"DOCKER_HOST=", "DOCKER_CONTEXT=", "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH="} {
			if strings.HasPrefix(kv, name) {
				sp.Environ = append(sp.Environ, kv)
			}
		}
	}
	sum, err := sp.checksum()
	if err != nil {
		return nil, err
	}
	sp.Checksum = sum
	return sp, nil
}

func (sp *SavedPlan) checksum() (string, error) {
	c := *sp
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// Encode returns the saved plan as JSON.
func (sp *SavedPlan) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	err := enc.Encode(sp)
	return buf.Bytes(), err
}

// ErrNotSavedPlan is returned for a file that is not a usable saved plan.
var ErrNotSavedPlan = errors.New("not a usable dockplan saved plan")

// ParseSavedPlan decodes and checks a saved plan file; name is used in
// errors. A file that is no plan at all (a configuration, a state) is
// told apart from a plan that was truncated or edited: only the second
// gets the advice to make the plan again under the same name, which would
// overwrite the file.
func ParseSavedPlan(name string, data []byte) (*SavedPlan, error) {
	fail := func(why string, args ...any) (*SavedPlan, error) {
		return nil, fmt.Errorf("%w: %s: %s; make a new one with dockplan plan -out %s", ErrNotSavedPlan, name, fmt.Sprintf(why, args...), name)
	}
	notPlan := func(why string, args ...any) (*SavedPlan, error) {
		return nil, fmt.Errorf("%w: %s is not a plan file (%s); give the file that dockplan plan -out wrote", ErrNotSavedPlan, name, fmt.Sprintf(why, args...))
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return fail("the file is empty")
	case trimmed[0] != '{':
		return notPlan("plan files are JSON objects")
	}
	var sp SavedPlan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fail("the file ends early, so it was truncated (unexpected EOF)")
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(data, &head) == nil && head.Kind != savedKind {
			return notPlan("%v", err)
		}
		return fail("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("there is more after the plan's JSON object: the file was edited")
	}
	switch {
	case sp.Kind != savedKind:
		return notPlan("kind %q", sp.Kind)
	case sp.FormatVersion > SavedFormatVersion:
		return fail("written by a newer dockplan (format %d; this one reads up to %d)", sp.FormatVersion, SavedFormatVersion)
	case sp.FormatVersion < 1 || sp.Plan == nil || len(sp.Files) == 0:
		return fail("it is incomplete")
	}
	sum, err := sp.checksum()
	if err != nil || sum != sp.Checksum {
		return fail("its checksum does not match: the file was truncated or edited")
	}
	if err := sp.Plan.checkShape(); err != nil {
		return fail("%v: the file was edited", err)
	}
	return &sp, nil
}

// checkShape verifies what show and apply take for granted in a plan read
// from a file: the checksum catches accidents, not an edit that seals the
// file again. The applier closes one channel per step ID and waits on
// each dependency's channel, so a repeated ID would panic and a dependency
// on a step that does not exist would wait forever.
func (p *Plan) checkShape() error {
	ids := make(map[string]bool, len(p.Steps))
	for i, s := range p.Steps {
		switch {
		case s == nil:
			return fmt.Errorf("step %d is null", i)
		case s.ID == "":
			return fmt.Errorf("step %d has no id", i)
		case ids[s.ID]:
			return fmt.Errorf("step %q appears twice", s.ID)
		}
		for _, dep := range s.DependsOn {
			if !ids[dep] {
				return fmt.Errorf("step %q depends on %q, which is not an earlier step", s.ID, dep)
			}
		}
		ids[s.ID] = true
	}
	for i, h := range p.Hosts {
		if h == nil {
			return fmt.Errorf("host %d is null", i)
		}
	}
	return nil
}

// Sources returns the configuration files for hclspec.LoadSources.
func (sp *SavedPlan) Sources() map[string][]byte {
	out := map[string][]byte{}
	for name, src := range sp.Files {
		out[name] = []byte(src)
	}
	return out
}

// Values returns the saved variable values for hclspec.LoadOptions.Values.
func (sp *SavedPlan) Values() (map[string]cty.Value, error) {
	out := map[string]cty.Value{}
	for _, name := range sortedKeys(sp.Variables) {
		sv := sp.Variables[name]
		ty, err := ctyjson.UnmarshalType(sv.Type)
		if err != nil {
			return nil, fmt.Errorf("variable %s in the saved plan: %w", name, err)
		}
		val, err := ctyjson.Unmarshal(sv.Value, ty)
		if err != nil {
			return nil, fmt.Errorf("variable %s in the saved plan: %w", name, err)
		}
		out[name] = val
	}
	return out, nil
}

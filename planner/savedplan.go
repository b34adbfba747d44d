package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// errors.
func ParseSavedPlan(name string, data []byte) (*SavedPlan, error) {
	fail := func(why string, args ...any) (*SavedPlan, error) {
		return nil, fmt.Errorf("%w: %s: %s; make a new one with dockplan plan -out %s", ErrNotSavedPlan, name, fmt.Sprintf(why, args...), name)
	}
	var sp SavedPlan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return fail("%v", err)
	}
	switch {
	case sp.Kind != savedKind:
		return fail("it is not a plan file (kind %q)", sp.Kind)
	case sp.FormatVersion > SavedFormatVersion:
		return fail("written by a newer dockplan (format %d; this one reads up to %d)", sp.FormatVersion, SavedFormatVersion)
	case sp.FormatVersion < 1 || sp.Plan == nil || len(sp.Files) == 0:
		return fail("it is incomplete")
	}
	sum, err := sp.checksum()
	if err != nil || sum != sp.Checksum {
		return fail("its checksum does not match: the file was truncated or edited")
	}
	return &sp, nil
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

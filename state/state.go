package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"

	"github.com/dockplan/dockplan/engine"
)

// FormatVersion is the state format this build writes and reads. A state of
// a newer format is refused, never overwritten.
const FormatVersion = 1

// DefaultPath is the state file beside the configuration.
const DefaultPath = "dockplan.state.json"

// State is what dockplan manages for one project.
type State struct {
	// FormatVersion is the format of the encoded state.
	FormatVersion int `json:"format_version"`
	// Lineage identifies this state's history; set once when the state is
	// created, never changed.
	Lineage string `json:"lineage"`
	// Serial is bumped on every change; saved plans record it.
	Serial int64 `json:"serial"`
	// Project is the configuration's project.
	Project string `json:"project"`
	// Instances are the managed instances by address ("web[1]").
	Instances map[string]*Instance `json:"instances"`
}

// Instance is one managed container as dockplan created it.
type Instance struct {
	// Address is the instance address, also the key in State.Instances.
	Address string `json:"address"`
	// Container and Index are the container block and count.index.
	Container string `json:"container"`
	Index     int    `json:"index"`
	// Host is the host block the instance runs on.
	Host string `json:"host"`
	// HostAddress is where other containers reached the host's published
	// ports when the instance was created (plans made without asking the
	// hosts use it for links).
	HostAddress string `json:"host_address,omitempty"`
	// ContainerID and Name identify the Docker container.
	ContainerID string `json:"container_id"`
	Name        string `json:"name"`
	// ImageID is the image the container was created from.
	ImageID string `json:"image_id"`
	// ConfigHash covers the declared fields that need a re-create; it is
	// also the container's dockplan.config-hash label.
	ConfigHash string `json:"config_hash"`
	// Spec is the full create configuration, secrets included, so the
	// container can be re-created without the configuration files.
	Spec engine.ContainerSpec `json:"spec"`
	// Ports are the published ports as the engine bound them.
	Ports []engine.PortBinding `json:"ports"`
	// Sensitive lists the spec attribute paths ("env.DB_PASSWORD") whose
	// values are sensitive, so plans never show them, not even as "before".
	Sensitive []string `json:"sensitive,omitempty"`
}

// New returns an empty state for project with the given lineage.
func New(project, lineage string) *State {
	return &State{FormatVersion: FormatVersion, Lineage: lineage, Project: project, Instances: map[string]*Instance{}}
}

// NewLineage returns a new random lineage (a version 4 UUID) for a state
// that is about to be saved for the first time.
func NewLineage() string { return newUUID() }

// Addresses returns the instance addresses, sorted.
func (s *State) Addresses() []string {
	out := make([]string, 0, len(s.Instances))
	for a := range s.Instances {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// ErrNewerFormat is returned for a state written by a newer dockplan.
var ErrNewerFormat = errors.New("state written by a newer dockplan")

// ParseError is a state file that cannot be used, with where and why.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("state file %s: %v", e.Path, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

var lineagePattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Parse decodes and checks a state. path names the source in errors.
func Parse(path string, data []byte) (*State, error) {
	fail := func(format string, args ...any) (*State, error) {
		return nil, &ParseError{Path: path, Err: fmt.Errorf(format, args...)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fail("the file is empty; restore it from %s.backup, or remove it if nothing was ever applied", path)
	}
	var probe struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil || probe.FormatVersion == nil {
		return fail("not a dockplan state (%s); restore it from %s.backup", jsonProblem(err), path)
	}
	if *probe.FormatVersion > FormatVersion {
		return nil, &ParseError{Path: path, Err: fmt.Errorf("%w: format %d, this dockplan reads up to %d; upgrade dockplan (the file is left untouched)", ErrNewerFormat, *probe.FormatVersion, FormatVersion)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return fail("%s; restore it from %s.backup", jsonProblem(err), path)
	}
	if err := s.check(); err != nil {
		return fail("%v", err)
	}
	return &s, nil
}

func jsonProblem(err error) string {
	if err == nil {
		return "no format_version"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	// encoding/json names Go types ("cannot unmarshal array into Go value
	// of type struct { FormatVersion *int ... }"); say it in the file's
	// words instead.
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Type != nil {
		where := "the top level"
		if te.Field != "" {
			where = fmt.Sprintf("%q", te.Field)
		}
		return fmt.Sprintf("%s holds a JSON %s where %s belongs (byte %d)", where, te.Value, jsonKind(te.Type.Kind()), te.Offset)
	}
	return err.Error()
}

// jsonKind names the JSON value a Go kind is decoded from.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number within range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}

// check verifies the invariants a decoded state must hold.
func (s *State) check() error {
	if s.FormatVersion < 1 {
		return fmt.Errorf("format_version %d is not valid", s.FormatVersion)
	}
	if !lineagePattern.MatchString(s.Lineage) {
		return fmt.Errorf("lineage %q is not a UUID", s.Lineage)
	}
	if s.Serial < 0 {
		return fmt.Errorf("serial %d is negative", s.Serial)
	}
	if s.Instances == nil {
		s.Instances = map[string]*Instance{}
	}
	for _, addr := range s.Addresses() {
		inst := s.Instances[addr]
		switch {
		case inst == nil:
			return fmt.Errorf("instance %q is null", addr)
		case inst.Address != addr:
			return fmt.Errorf("instance %q records address %q", addr, inst.Address)
		case inst.Host == "" || inst.Name == "":
			return fmt.Errorf("instance %q has no host or container name", addr)
		}
	}
	return nil
}

// Read reads and checks the state file at path. A missing file is not an
// error: it returns nil, nil (nothing applied yet).
func Read(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	return Parse(path, data)
}

// Encode returns the state as indented JSON with sorted keys.
func (s *State) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

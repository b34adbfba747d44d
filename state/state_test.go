package state_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

const lineage = "5b1d2c3e-0000-4000-8000-00000000abcd"

func sample() *state.State {
	s := state.New("shop", lineage)
	s.Serial = 7
	s.Instances["web[0]"] = &state.Instance{Address: "web[0]", Container: "web", Host: "node1", ContainerID: "abc", Name: "shop-web-0",
		ConfigHash: "h", Spec: engine.ContainerSpec{Name: "shop-web-0", Image: "nginx:1", Env: []string{"A=1"},
			Restart: engine.RestartPolicy{Name: engine.RestartUnlessStopped}}}
	return s
}

func TestRoundTrip(t *testing.T) {
	data, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := state.Parse("s.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 7 || got.Instances["web[0]"].Spec.Restart.Name != engine.RestartUnlessStopped {
		t.Errorf("round trip lost data: %+v", got.Instances["web[0]"])
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := sample().Encode()
	tests := []struct {
		name string
		data string
		want string
	}{
		{name: "empty", data: "", want: "the file is empty"},
		{name: "not json", data: "hello", want: "not a dockplan state"},
		{name: "truncated", data: string(good[:len(good)/2]), want: "restore it from s.json.backup"},
		{name: "newer format", data: `{"format_version": 99}`, want: "format 99, this dockplan reads up to 1"},
		{name: "bad lineage", data: `{"format_version":1,"lineage":"x","serial":1,"project":"p","instances":{}}`, want: "not a UUID"},
		{name: "negative serial", data: `{"format_version":1,"lineage":"` + lineage + `","serial":-1,"project":"p","instances":{}}`, want: "negative"},
		{name: "address mismatch", data: `{"format_version":1,"lineage":"` + lineage + `","serial":1,"project":"p","instances":{"a":{"address":"b","host":"h","name":"n"}}}`, want: `records address "b"`},
		{name: "unknown field", data: `{"format_version":1,"lineage":"` + lineage + `","bogus":1}`, want: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := state.Parse("s.json", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "s.json") {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	_, err := state.Parse("s.json", []byte(`{"format_version": 2}`))
	if !errors.Is(err, state.ErrNewerFormat) {
		t.Errorf("newer format is not ErrNewerFormat: %v", err)
	}
}

func TestReadMissing(t *testing.T) {
	s, err := state.Read(filepath.Join(t.TempDir(), "none.json"))
	if s != nil || err != nil {
		t.Fatalf("missing file: %v %v", s, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Read(filepath.Join(dir, "s.json")); err == nil {
		t.Fatal("empty file accepted")
	}
}

// FuzzParse: no input panics the state decoder; whatever it accepts
// encodes and parses again to the same serial and instances.
func FuzzParse(f *testing.F) {
	good, _ := sample().Encode()
	f.Add(good)
	f.Add([]byte(`{"format_version":1}`))
	f.Add([]byte(`{"format_version":1,"lineage":"` + lineage + `","instances":{"a":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := state.Parse("fuzz.json", data)
		if err != nil {
			return
		}
		again, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := state.Parse("again.json", again)
		if err != nil || back.Serial != s.Serial || len(back.Instances) != len(s.Instances) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

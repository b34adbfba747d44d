package state_test

import (
	"bytes"
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
	rich, err := richSample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := state.Parse("rich.json", rich)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Encode(); !bytes.Equal(again, rich) {
		t.Errorf("the rich sample does not round-trip:\n%s\n%s", rich, again)
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
		{name: "array at the top", data: `[]`, want: "the top level holds a JSON array where an object belongs"},
		{name: "serial of the wrong type", data: `{"format_version":1,"lineage":"` + lineage + `","serial":"7"}`, want: `"serial" holds a JSON string where a whole number within range belongs`},
		{name: "fractional index", data: `{"format_version":1,"lineage":"` + lineage + `","instances":{"a":{"index":1.5}}}`, want: `"instances.index" holds a JSON number 1.5 where a whole number within range belongs`},
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
// encodes and parses again to the same bytes. The seeds are what a state
// file really meets: valid states (a small one and one using every field),
// truncations, hand edits that break an invariant, wrong JSON types, a
// newer format and an empty file.
func FuzzParse(f *testing.F) {
	good, _ := sample().Encode()
	rich, _ := richSample().Encode()
	for _, seed := range [][]byte{good, rich, good[:len(good)/2], rich[:len(rich)-3], rich[:1]} {
		f.Add(seed)
	}
	for _, seed := range []string{
		"", "  \n", "null", "[]", `"state"`, `{}`,
		`{"format_version":1}`,
		`{"format_version":2,"lineage":"` + lineage + `"}`,
		`{"format_version":0,"lineage":"` + lineage + `"}`,
		`{"format_version":1,"lineage":"` + lineage + `","instances":{"a":null}}`,
		`{"format_version":1,"lineage":"` + lineage + `","serial":-1,"project":"p","instances":{}}`,
		`{"format_version":1,"lineage":"` + lineage + `","serial":"7"}`,
		`{"format_version":1,"lineage":"not-a-uuid","serial":1}`,
		`{"format_version":1,"lineage":"` + lineage + `","instances":{"a":{"address":"b","host":"h","name":"n"}}}`,
		`{"format_version":1,"lineage":"` + lineage + `","instances":{"a":{"address":"a","host":"","name":"n"}}}`,
		`{"format_version":1,"lineage":"` + lineage + `","instances":{"a":{"address":"a","host":"h","name":"n","spec":{"Restart":{"Name":"sometimes"}}}}}`,
		`{"format_version":1,"lineage":"` + lineage + `","instances":{"a":{"address":"a","host":"h","name":"n","spec":{"StopTimeout":"30s"}}}}`,
		`{"format_version":1,"lineage":"` + lineage + `","bogus":1}`,
		`{"format_version":1,"format_version":2,"lineage":"` + lineage + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := state.Parse("fuzz.json", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		again, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := state.Parse("again.json", again)
		if err != nil {
			t.Fatalf("re-parse of what was accepted: %v", err)
		}
		third, err := back.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, third) {
			t.Fatalf("encode, parse, encode is not stable:\n%s\n%s", again, third)
		}
	})
}

// richSample is a state that uses every field of an instance.
func richSample() *state.State {
	s := sample()
	s.Serial = 42
	s.Instances["api[1]"] = &state.Instance{
		Address: "api[1]", Container: "api", Index: 1, Host: "node2", HostAddress: "10.0.0.12",
		ContainerID: strings.Repeat("c", 64), Name: "shop-api-1", ImageID: "sha256:" + strings.Repeat("0", 64),
		ConfigHash: "9f86d081", Sensitive: []string{"env.DB_PASSWORD"},
		Spec: engine.ContainerSpec{
			Name: "shop-api-1", Image: "shop/api:1.4.2", Cmd: []string{"serve"}, Entrypoint: []string{"/api"},
			Env: []string{"DB_PASSWORD=canary", "DB_HOST=10.0.0.11"}, Labels: map[string]string{"team": "shop"},
			Ports:       []engine.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostPort: 31000}},
			Mounts:      []engine.Mount{{Type: engine.MountVolume, Source: "data", Target: "/data", ReadOnly: true}},
			Resources:   engine.Resources{NanoCPUs: 5e8, Memory: 256 << 20},
			Restart:     engine.RestartPolicy{Name: engine.RestartOnFailure, MaxRetries: 5},
			Healthcheck: &engine.Healthcheck{Test: []string{"CMD", "/api", "-healthcheck"}, Interval: 5e9, Retries: 3},
			User:        "1000:1000", WorkingDir: "/srv", Hostname: "api-1", ExtraHosts: []string{"db:10.0.0.11"},
			StopTimeout: 30e9,
		},
		Ports: []engine.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 31000}},
	}
	return s
}

func TestCloneIsDeep(t *testing.T) {
	s := state.New("shop", state.NewLineage())
	s.Serial = 4
	s.Instances["web[0]"] = &state.Instance{Address: "web[0]", Container: "web", Host: "node1", Name: "shop-web-0", ContainerID: "abc",
		Spec: engine.ContainerSpec{Name: "shop-web-0", Image: "nginx:1", Env: []string{"A=1"}}}
	c, err := s.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.Instances["web[0]"].Host = "node2"
	c.Instances["web[0]"].Spec.Env[0] = "A=2"
	c.Serial++
	if s.Instances["web[0]"].Host != "node1" || s.Instances["web[0]"].Spec.Env[0] != "A=1" || s.Serial != 4 {
		t.Errorf("changing the clone changed the original: %+v", s.Instances["web[0]"])
	}
	if c.Lineage != s.Lineage || c.Project != "shop" || c.Instances["web[0]"].ContainerID != "abc" {
		t.Errorf("clone = %+v", c)
	}
}

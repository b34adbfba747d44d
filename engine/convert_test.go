package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// TestSpecRoundTrip maps a spec to Docker's create request and reads it
// back the way InspectContainer does: every field must survive.
func TestSpecRoundTrip(t *testing.T) {
	spec := ContainerSpec{
		Name: "shop-web-0", Image: "dockplan-testapp:dev",
		Cmd: []string{"-port", "8080"}, Entrypoint: []string{"/testapp"},
		Env:    []string{"A=1", "B=2"},
		Labels: map[string]string{"dockplan.project": "shop"},
		Ports: []PortBinding{
			{ContainerPort: 8080, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 18080},
			{ContainerPort: 9000, Protocol: "udp"},
		},
		Mounts: []Mount{
			{Type: MountBind, Source: "/srv/data", Target: "/data", ReadOnly: true},
			{Type: MountVolume, Source: "cache", Target: "/cache"},
		},
		Resources:   Resources{NanoCPUs: 5e8, Memory: 256 << 20, MemoryReservation: 128 << 20},
		Restart:     RestartPolicy{Name: RestartOnFailure, MaxRetries: 3},
		Healthcheck: &Healthcheck{Test: []string{"CMD", "/testapp", "-healthcheck"}, Interval: time.Second, Retries: 3},
		User:        "65534", WorkingDir: "/", Hostname: "web",
		ExtraHosts:  []string{"db:10.0.0.2"},
		Network:     "shop-net",
		StopTimeout: 5 * time.Second,
		ReadOnly:    true, Init: true,
		CapAdd:  []string{"NET_BIND_SERVICE"},
		CapDrop: []string{"ALL"},
		Tmpfs:   map[string]string{"/run": "size=64m", "/tmp": ""},
		ShmSize: 128 << 20, LogDriver: "json-file",
		LogOptions: map[string]string{"max-size": "10m", "max-file": "3"},
		Ulimits:    []Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}},
		Sysctls:    map[string]string{"net.core.somaxconn": "1024"},
	}
	cfg, hostCfg, netCfg := createConfig(spec)
	if netCfg == nil || netCfg.EndpointsConfig["shop-net"] == nil {
		t.Errorf("networking config = %+v, want an endpoint on shop-net", netCfg)
	}
	if _, ok := cfg.ExposedPorts[nat.Port("9000/udp")]; !ok {
		t.Errorf("exposed ports = %v, want 9000/udp", cfg.ExposedPorts)
	}
	got := specFromInspect(container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{Name: "/shop-web-0", HostConfig: hostCfg},
		Config:            cfg,
	})
	if !reflect.DeepEqual(got, spec) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, spec)
	}
}

func TestMountsFromBinds(t *testing.T) {
	got := mountsFromDocker(&container.HostConfig{Binds: []string{"/srv:/srv:ro,z", "vol:/v", "bad"}})
	want := []Mount{
		{Type: MountBind, Source: "/srv", Target: "/srv", ReadOnly: true},
		{Type: MountVolume, Source: "vol", Target: "/v"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPortsFromSummaryDropsIPv6Twins(t *testing.T) {
	got := portsFromSummary([]container.Port{
		{IP: "::", PrivatePort: 8080, PublicPort: 32768, Type: "tcp"},
		{IP: "0.0.0.0", PrivatePort: 8080, PublicPort: 32768, Type: "tcp"},
		{PrivatePort: 9090, Type: "tcp"}, // exposed, not published
		{IP: "127.0.0.1", PrivatePort: 53, PublicPort: 5353, Type: "udp"},
	})
	want := []PortBinding{
		{ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1", HostPort: 5353},
		{ContainerPort: 8080, Protocol: "tcp", HostIP: "0.0.0.0", HostPort: 32768},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLabelFilters(t *testing.T) {
	got := labelFilters(map[string]string{"dockplan.project": "shop", "dockplan.container": ""})
	want := []string{"dockplan.container", "dockplan.project=shop"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if m := labelsFromList([]string{"zone=a", "ssd=true", "bare"}); m["zone"] != "a" || m["ssd"] != "true" || m["bare"] != "" {
		t.Errorf("labelsFromList = %v", m)
	}
}

func TestResourcesFigures(t *testing.T) {
	tests := []struct {
		name       string
		res        Resources
		wantMilli  int64
		wantMemory int64
	}{
		{"none", Resources{}, 0, 0},
		{"nano cpus", Resources{NanoCPUs: 1.5e9, Memory: 1 << 30}, 1500, 1 << 30},
		{"quota with default period", Resources{CPUQuota: 50000}, 500, 0},
		{"quota and period", Resources{CPUQuota: 20000, CPUPeriod: 10000}, 2000, 0},
		{"reservation only", Resources{MemoryReservation: 64 << 20}, 0, 64 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.MilliCPUs(); got != tt.wantMilli {
				t.Errorf("MilliCPUs = %d, want %d", got, tt.wantMilli)
			}
			if got := tt.res.MemoryBytes(); got != tt.wantMemory {
				t.Errorf("MemoryBytes = %d, want %d", got, tt.wantMemory)
			}
		})
	}
}

func TestEnumsRoundTrip(t *testing.T) {
	for s := StateUnknown; s <= StateDead; s++ {
		if got := ParseContainerState(s.String()); got != s {
			t.Errorf("state %v round-trips to %v", s, got)
		}
	}
	for h := HealthNone; h <= HealthUnhealthy; h++ {
		if got := ParseHealthStatus(h.String()); got != h {
			t.Errorf("health %v round-trips to %v", h, got)
		}
	}
	for r := RestartNo; r <= RestartOnFailure; r++ {
		if got, ok := ParseRestartPolicyName(r.String()); !ok || got != r {
			t.Errorf("restart %v round-trips to %v %v", r, got, ok)
		}
	}
	if _, ok := ParseRestartPolicyName("sometimes"); ok {
		t.Error("unknown restart policy parsed")
	}
	if got := ContainerState(99).String(); got != "unknown" {
		t.Errorf("out-of-range state = %q", got)
	}
	if got := EventAction("health_status: healthy").Base(); got != ActionHealthStatus {
		t.Errorf("Base = %q", got)
	}
}

func TestErrorShape(t *testing.T) {
	inner := errors.New("boom")
	tests := []struct {
		name string
		err  *Error
		want string
		kind error
	}{
		{"with subject", NewError("web1", "inspect container", "shop-web-0", ErrNotFound, inner),
			`host "web1": inspect container "shop-web-0": boom`, ErrNotFound},
		{"without subject", NewError("web1", "info", "", ErrUnreachable, inner), `host "web1": info: boom`, ErrUnreachable},
		{"kind only", NewError("web1", "inspect network", "n", ErrNotFound, nil), `host "web1": inspect network "n": not found`, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err.Error() != tt.want {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.want)
			}
			wrapped := fmt.Errorf("probe: %w", tt.err)
			if !errors.Is(wrapped, tt.kind) {
				t.Errorf("errors.Is(wrapped, %v) = false", tt.kind)
			}
			if errors.Is(wrapped, ErrConflict) {
				t.Error("errors.Is(wrapped, ErrConflict) = true")
			}
		})
	}
}

func TestRewritePlaceholder(t *testing.T) {
	inner := errors.New(`Cannot connect to the Docker daemon at http://docker.example.com. Is the docker daemon running? (lookup docker.example.com)`)
	got := rewritePlaceholder(inner, "ssh://root@10.213.0.11", "10.213.0.11")
	want := `Cannot connect to the Docker daemon at ssh://root@10.213.0.11. Is the docker daemon running? (lookup 10.213.0.11)`
	if got.Error() != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(got, inner) {
		t.Error("rewritten error lost the original from its chain")
	}
	if plain := errors.New("x"); rewritePlaceholder(plain, "a", "b") != plain {
		t.Error("an error without the placeholder was changed")
	}
}

func TestSpecJSONUsesDockerWords(t *testing.T) {
	spec := ContainerSpec{
		Name: "a", Restart: RestartPolicy{Name: RestartUnlessStopped},
		Mounts: []Mount{{Type: MountTmpfs, Target: "/tmp"}},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{`"Name":"unless-stopped"`, `"Type":"tmpfs"`} {
		if !strings.Contains(string(data), word) {
			t.Errorf("JSON %s lacks %s", data, word)
		}
	}
	// Fields added later are left out when unset, so that states written
	// before them read and write back the same.
	var keys map[string]any
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ReadOnly", "Init", "CapAdd", "CapDrop", "Tmpfs", "ShmSize", "LogDriver", "LogOptions", "Ulimits", "Sysctls"} {
		if _, ok := keys[k]; ok {
			t.Errorf("JSON %s holds %s although it is unset", data, k)
		}
	}
	var back ContainerSpec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, spec) {
		t.Errorf("round trip: got %+v, want %+v", back, spec)
	}
	c := Container{State: StateRunning, Health: HealthHealthy}
	data, _ = json.Marshal(c)
	var cBack Container
	if err := json.Unmarshal(data, &cBack); err != nil || cBack.State != StateRunning || cBack.Health != HealthHealthy {
		t.Errorf("container round trip: %+v, %v (%s)", cBack, err, data)
	}
	if err := json.Unmarshal([]byte(`{"Restart":{"Name":"sometimes"}}`), &back); err == nil {
		t.Error("unknown restart policy accepted")
	}
}

func TestReadProgress(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		want    []PullProgress
		wantErr string
	}{
		{"progress", `{"status":"Pulling from app","id":"dev"}
{"status":"Downloading","id":"abc","progressDetail":{"current":10,"total":100}}
{"status":"Pull complete","id":"abc","progressDetail":{}}`, []PullProgress{
			{ID: "dev", Status: "Pulling from app"},
			{ID: "abc", Status: "Downloading", Current: 10, Total: 100},
			{ID: "abc", Status: "Pull complete"},
		}, ""},
		{"error detail", `{"status":"Pulling"}
{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`, []PullProgress{{Status: "Pulling"}}, "manifest unknown"},
		{"legacy error", `{"error":"denied"}`, nil, "denied"},
		{"broken stream", `{"status":`, nil, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []PullProgress
			err := readProgress(strings.NewReader(tt.stream), func(p PullProgress) { got = append(got, p) })
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("progress = %+v, want %+v", got, tt.want)
			}
		})
	}
}

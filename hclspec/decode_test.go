package hclspec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// loadValid decodes the shop example of the language reference and fails
// on any diagnostic.
func loadValid(t *testing.T, opts hclspec.LoadOptions) *hclspec.Config {
	t.Helper()
	cfg, _, diags := hclspec.Load("testdata/valid", opts)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics: %v", diags)
	}
	return cfg
}

var shopOpts = hclspec.LoadOptions{Vars: []string{"db_password=canary-s3cret"}}

func TestDecodeShop(t *testing.T) {
	cfg := loadValid(t, shopOpts)
	if cfg.Project != "shop" {
		t.Errorf("Project = %q", cfg.Project)
	}
	node1 := cfg.Host("node1")
	want := &hclspec.Host{
		Name: "node1", Address: "ssh://deploy@10.0.0.11", PublicAddress: "10.0.0.11",
		Labels:   map[string]string{"zone": "a", "disk": "ssd"},
		Capacity: &hclspec.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30},
		Reserve:  hclspec.Resources{MilliCPU: 500, MemoryBytes: 1 << 30},
	}
	if diff := cmp.Diff(want, node1, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".DeclRange" }, cmp.Ignore())); diff != "" {
		t.Errorf("node1 (-want +got):\n%s", diff)
	}
	node2 := cfg.Host("node2")
	if node2.TLS == nil || node2.TLS.CAFile != filepath.Join("testdata/valid", "ca.pem") || node2.PublicAddress != "10.0.0.12" {
		t.Errorf("node2 = %+v, TLS %+v", node2, node2.TLS)
	}

	var addrs []string
	for _, inst := range cfg.Instances() {
		addrs = append(addrs, inst.Address+"="+inst.Name)
	}
	wantAddrs := []string{"db=shop-db-0", "api[0]=shop-api-0", "api[1]=shop-api-1", "api[2]=shop-api-2", "web[0]=shop-web-0", "web[1]=shop-web-1"}
	if diff := cmp.Diff(wantAddrs, addrs); diff != "" {
		t.Errorf("instances (-want +got):\n%s", diff)
	}

	db := cfg.Container("db")
	inst := db.Instances[0]
	if inst.Image != "postgres:16" || inst.Restart.String() != "unless-stopped" {
		t.Errorf("db image/restart = %q %q", inst.Image, inst.Restart)
	}
	if inst.Resources != (hclspec.Resources{MilliCPU: 1000, MemoryBytes: 1 << 30}) {
		t.Errorf("db resources = %+v", inst.Resources)
	}
	wantPlacement := hclspec.Placement{Hosts: []string{"node1", "node2"}, Labels: map[string]string{"disk": "ssd"}, DistinctHosts: true}
	if diff := cmp.Diff(wantPlacement, db.Placement); diff != "" {
		t.Errorf("db placement (-want +got):\n%s", diff)
	}
	h := inst.Health
	if h == nil || h.Interval != 5*time.Second || h.Timeout != 3*time.Second || h.StartPeriod != 10*time.Second || h.Retries != 5 {
		t.Errorf("db health = %+v", h)
	}
	if len(inst.Ports) != 1 || inst.Ports[0].HostPort != 5432 || len(inst.Volumes) != 2 || !inst.Volumes[1].ReadOnly {
		t.Errorf("db ports %+v volumes %+v", inst.Ports, inst.Volumes)
	}

	api := cfg.Container("api")
	if !api.Counted || api.Count != 3 || len(api.Links) != 1 || api.Links[0].Alias != "db" {
		t.Errorf("api = %+v", api)
	}
	if diff := cmp.Diff([]string{"db"}, api.Deps); diff != "" {
		t.Errorf("api deps (-want +got):\n%s", diff)
	}
	web := cfg.Container("web")
	if diff := cmp.Diff([]string{"api"}, web.Deps); diff != "" {
		t.Errorf("web deps (-want +got):\n%s", diff)
	}
	if web.Links[0].Alias != "backend" || web.Links[0].Port != 8080 {
		t.Errorf("web link = %+v", web.Links[0])
	}
}

func TestSensitiveMarks(t *testing.T) {
	cfg := loadValid(t, shopOpts)
	env := cfg.Container("db").Instances[0].Env.Value
	pw := env.Index(cty.StringVal("POSTGRES_PASSWORD"))
	if !pw.HasMark(hclspec.Sensitive) {
		t.Fatalf("POSTGRES_PASSWORD is not marked sensitive: %#v", pw)
	}
	if v := cfg.Variable("db_password"); !v.Value.HasMark(hclspec.Sensitive) || v.Source != "-var" {
		t.Errorf("db_password = %#v from %q", v.Value, v.Source)
	}
	if cfg.Variable("api_replicas").Value.IsMarked() {
		t.Errorf("api_replicas must not be marked")
	}
}

func TestDeferredValues(t *testing.T) {
	cfg := loadValid(t, shopOpts)
	api0 := cfg.Container("api").Instances[0]
	if api0.Env.Known() {
		t.Fatalf("api env must be unknown before placement: %#v", api0.Env.Value)
	}
	if diff := cmp.Diff([]string{"db"}, api0.Env.Refs); diff != "" {
		t.Errorf("refs (-want +got):\n%s", diff)
	}
	// Once db is placed on node1 its address is known; evaluating again
	// must give the final string.
	containers := cfg.ContainerValues(func(addr string) hclspec.InstanceValues {
		if addr == "db" {
			return hclspec.InstanceValues{Host: "node1", HostAddress: "10.0.0.11"}
		}
		return hclspec.InstanceValues{}
	})
	val, diags := api0.Env.Eval(cfg.EvalContext(api0, containers))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := val.Index(cty.StringVal("DATABASE_URL"))
	if !got.IsKnown() || got.AsString() != "postgres://app@10.0.0.11:5432/shop" {
		t.Errorf("DATABASE_URL = %#v", got)
	}
	out := cfg.Outputs[0]
	if out.Value.Known() || out.Value.Value.LengthInt() != 2 {
		t.Errorf("web_urls = %#v, want two unknown strings", out.Value.Value)
	}
}

func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.dockplan.hcl"), `
project = "p"
variable "n" {
  type    = number
  default = 1
}
variable "tags" {
  type    = list(string)
  default = []
}
`)
	varFile := filepath.Join(dir, "prod.hcl")
	write(t, varFile, "n = 3\nunknown_one = 1\n")
	tests := []struct {
		name       string
		opts       hclspec.LoadOptions
		want       int64
		wantSource string
	}{
		{name: "default", want: 1, wantSource: "default"},
		{name: "environment over default", opts: hclspec.LoadOptions{Environ: []string{"DOCKPLAN_VAR_n=2"}}, want: 2, wantSource: "environment"},
		{name: "var file over environment", opts: hclspec.LoadOptions{Environ: []string{"DOCKPLAN_VAR_n=2"}, VarFiles: []string{varFile}}, want: 3, wantSource: varFile},
		{name: "var over var file", opts: hclspec.LoadOptions{Environ: []string{"DOCKPLAN_VAR_n=2"}, VarFiles: []string{varFile}, Vars: []string{"n=4"}}, want: 4, wantSource: "-var"},
		{name: "last var wins", opts: hclspec.LoadOptions{Vars: []string{"n=4", "n=5"}}, want: 5, wantSource: "-var"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, diags := hclspec.Load(dir, tt.opts)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			v := cfg.Variable("n")
			got, _ := v.Value.AsBigFloat().Int64()
			if got != tt.want || v.Source != tt.wantSource {
				t.Errorf("n = %d from %q, want %d from %q", got, v.Source, tt.want, tt.wantSource)
			}
		})
	}
	t.Run("list from -var", func(t *testing.T) {
		cfg, _, diags := hclspec.Load(dir, hclspec.LoadOptions{Vars: []string{`tags=["a","b"]`}})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		if n := cfg.Variable("tags").Value.LengthInt(); n != 2 {
			t.Errorf("tags has %d elements", n)
		}
	})
	t.Run("warning for undeclared in var file", func(t *testing.T) {
		_, _, diags := hclspec.Load(dir, hclspec.LoadOptions{VarFiles: []string{varFile}})
		if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.Contains(diags[0].Detail, "unknown_one") {
			t.Errorf("diags = %v", diags)
		}
	})
}

func TestVariableErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.dockplan.hcl"), `
project = "p"
variable "n" { type = number }
variable "secret" {
  type      = number
  sensitive = true
  default   = 1
}
`)
	tests := []struct {
		name    string
		opts    hclspec.LoadOptions
		summary string
		detail  string
	}{
		{name: "missing", summary: "No value for required variable", detail: "DOCKPLAN_VAR_n"},
		{name: "undeclared -var", opts: hclspec.LoadOptions{Vars: []string{"n=1", "m=2"}}, summary: "Value for undeclared variable", detail: `Did you mean "n"?`},
		{name: "malformed -var", opts: hclspec.LoadOptions{Vars: []string{"n"}}, summary: "Invalid -var option", detail: "NAME=VALUE"},
		{name: "wrong type", opts: hclspec.LoadOptions{Vars: []string{"n=three"}}, summary: "Invalid value for variable", detail: "not a valid number"},
		{name: "missing var file", opts: hclspec.LoadOptions{Vars: []string{"n=1"}, VarFiles: []string{filepath.Join(dir, "nope.hcl")}}, summary: "Cannot read a variables file", detail: "no such file"},
		{name: "secret never echoed", opts: hclspec.LoadOptions{Vars: []string{"n=1", "secret=hunter2-canary"}}, summary: "Invalid value for variable", detail: "-var secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, diags := hclspec.Load(dir, tt.opts)
			if !diags.HasErrors() {
				t.Fatalf("no error")
			}
			found := false
			for _, d := range diags {
				if strings.Contains(d.Detail, "hunter2-canary") || strings.Contains(d.Summary, "hunter2-canary") {
					t.Errorf("a diagnostic shows the secret: %v", d)
				}
				found = found || (d.Summary == tt.summary && strings.Contains(d.Detail, tt.detail))
			}
			if !found {
				t.Errorf("want %q containing %q, got %v", tt.summary, tt.detail, diags)
			}
		})
	}
}

func TestImplicitHost(t *testing.T) {
	src := map[string][]byte{"m.dockplan.hcl": []byte("project = \"p\"\ncontainer \"web\" {\n  image = \"nginx:1\"\n  ports = [\"80:80\"]\n}\n")}
	tests := []struct {
		name    string
		environ []string
		want    hclspec.Host
	}{
		{name: "default socket", want: hclspec.Host{Name: "local", Address: hclspec.DefaultDockerHost}},
		{name: "DOCKER_HOST", environ: []string{"DOCKER_HOST=tcp://127.0.0.1:2375"}, want: hclspec.Host{Name: "local", Address: "tcp://127.0.0.1:2375", PublicAddress: "127.0.0.1"}},
		{name: "DOCKER_CONTEXT", environ: []string{"DOCKER_CONTEXT=prod"}, want: hclspec.Host{Name: "local", Context: "prod"}},
		{name: "TLS from the environment", environ: []string{"DOCKER_HOST=tcp://10.1.1.1:2376", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=/certs"},
			want: hclspec.Host{Name: "local", Address: "tcp://10.1.1.1:2376", PublicAddress: "10.1.1.1",
				TLS: &hclspec.TLSFiles{CAFile: "/certs/ca.pem", CertFile: "/certs/cert.pem", KeyFile: "/certs/key.pem"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, diags := hclspec.LoadSources(".", src, hclspec.LoadOptions{Environ: tt.environ})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			tt.want.Implicit = true
			tt.want.Labels = map[string]string{}
			if diff := cmp.Diff([]*hclspec.Host{&tt.want}, cfg.Hosts); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "motd.txt"), "hello\n")
	write(t, filepath.Join(dir, "main.dockplan.hcl"), `
project = "p"
locals {
  tags   = ["a", "b"]
  merged = merge({ A = "1" }, { B = "2" })
}
container "web" {
  image = format("nginx:%s", "1.25")
  count = 2
  env = merge(local.merged, {
    JOINED = join(",", local.tags)
    MOTD   = trimspace(file("motd.txt"))
    INDEX  = count.index
    JSON   = jsonencode({ k = 1 })
    B64    = base64encode("x")
    COAL   = coalesce("", "fallback")
    LOOK   = lookup({ a = "found" }, "a", "missing")
    TRY    = try(local.merged.C, "none")
  })
}
`)
	cfg, _, diags := hclspec.Load(dir, hclspec.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	env := cfg.Container("web").Instances[1].Env.Value.AsValueMap()
	got := map[string]string{}
	for k, v := range env {
		got[k] = v.AsString()
	}
	want := map[string]string{"A": "1", "B": "2", "JOINED": "a,b", "MOTD": "hello", "INDEX": "1",
		"JSON": `{"k":1}`, "B64": "eA==", "COAL": "fallback", "LOOK": "found", "TRY": "none"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if cfg.Container("web").Instances[1].Image != "nginx:1.25" {
		t.Errorf("image = %q", cfg.Container("web").Instances[1].Image)
	}
}

func TestDeterministic(t *testing.T) {
	a, _, _ := hclspec.Load("testdata/valid", shopOpts)
	for range 5 {
		b, _, _ := hclspec.Load("testdata/valid", shopOpts)
		for i, inst := range b.Instances() {
			if inst.Address != a.Instances()[i].Address {
				t.Fatalf("instance order differs between loads")
			}
		}
	}
	// Diagnostics come out in source order, whatever the map order.
	_, _, d1 := hclspec.Load("testdata/invalid-multi", hclspec.LoadOptions{})
	for range 5 {
		_, _, d2 := hclspec.Load("testdata/invalid-multi", hclspec.LoadOptions{})
		if d1.Error() != d2.Error() {
			t.Fatalf("diagnostics order differs:\n%v\n%v", d1, d2)
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImplicitHostChecks(t *testing.T) {
	src := map[string][]byte{"m.dockplan.hcl": []byte("project = \"p\"\n")}
	t.Run("plain tcp warns and marks insecure", func(t *testing.T) {
		cfg, _, diags := hclspec.LoadSources(".", src, hclspec.LoadOptions{Environ: []string{"DOCKER_HOST=tcp://10.1.2.3:2375"}})
		if diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Unencrypted Docker connection" {
			t.Fatalf("diags = %v", diags)
		}
		if !cfg.Hosts[0].Insecure {
			t.Errorf("implicit host not insecure")
		}
	})
	t.Run("bad scheme is an error", func(t *testing.T) {
		_, _, diags := hclspec.LoadSources(".", src, hclspec.LoadOptions{Environ: []string{"DOCKER_HOST=bogus://x"}})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "DOCKER_HOST") {
			t.Fatalf("diags = %v", diags)
		}
	})
}

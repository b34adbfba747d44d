package examples_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// examples lists every example directory and a few facts its decoded
// configuration must show. TestEveryExampleIsListed keeps it complete.
var examples = []struct {
	name  string
	dir   string
	check func(t *testing.T, cfg *hclspec.Config)
}{
	{
		name: "quickstart",
		dir:  "quickstart",
		check: func(t *testing.T, cfg *hclspec.Config) {
			if len(cfg.Hosts) != 1 || !cfg.Hosts[0].Implicit || cfg.Hosts[0].Name != "local" {
				t.Errorf("hosts = %v, want only the implicit host local", hostNames(cfg))
			}
			if got := cfg.Hosts[0].Address; got != hclspec.DefaultDockerHost {
				t.Errorf("local address = %q with an empty environment, want %q", got, hclspec.DefaultDockerHost)
			}
			hello := mustContainer(t, cfg, "hello")
			if hello.ImageSource != "local" || hello.Instances[0].Image != "dockplan-testapp:dev" {
				t.Errorf("hello image = %q from %q, want dockplan-testapp:dev from local", hello.Instances[0].Image, hello.ImageSource)
			}
			if p := hello.Instances[0].Ports; len(p) != 1 || p[0].HostPort != 18080 || p[0].ContainerPort != 8080 {
				t.Errorf("hello ports = %+v, want 18080:8080", p)
			}
			if hello.Instances[0].Health == nil {
				t.Error("hello has no health check")
			}
			if h := hello.Instances[0]; !h.ReadOnly || !h.Init || !slices.Equal(h.CapDrop, []string{"ALL"}) || h.Logging == nil || h.Logging.Driver != "json-file" {
				t.Errorf("hello is not hardened: read_only %v, init %v, cap_drop %v, logging %+v", h.ReadOnly, h.Init, h.CapDrop, h.Logging)
			}
			wantInstances(t, cfg, "worker", 2)
			if o := mustOutput(t, cfg, "hello_url"); o.Value.Value != cty.StringVal("http://localhost:18080/") {
				t.Errorf("hello_url = %#v, want it known at decode time", o.Value.Value)
			}
		},
	},
	{
		name: "three-tier",
		dir:  "three-tier",
		check: func(t *testing.T, cfg *hclspec.Config) {
			if got := hostNames(cfg); !slices.Equal(got, []string{"node1", "node2", "node3"}) {
				t.Errorf("hosts = %v, want node1, node2, node3", got)
			}
			for i, h := range cfg.Hosts {
				want := fmt.Sprintf("tcp://10.213.0.%d:2375", 11+i)
				if h.Address != want || !h.Insecure {
					t.Errorf("host %s = %q insecure=%v, want %q insecure=true", h.Name, h.Address, h.Insecure, want)
				}
			}
			wantInstances(t, cfg, "db", 1)
			wantInstances(t, cfg, "api", 3)
			wantInstances(t, cfg, "web", 2)
			if db := mustContainer(t, cfg, "db"); !slices.Equal(db.Placement.Hosts, []string{"node1"}) {
				t.Errorf("db placement.hosts = %v, want pinned to node1", db.Placement.Hosts)
			}
			api := mustContainer(t, cfg, "api")
			if len(api.Links) != 1 || api.Links[0].Target != "db" || api.Links[0].Alias != "db" {
				t.Errorf("api links = %+v, want one link to db", api.Links)
			}
			if !api.Placement.DistinctHosts {
				t.Error("api is not spread with distinct_hosts")
			}
			if env := api.Instances[0].Env; env.Known() || !slices.Equal(env.Refs, []string{"db"}) {
				t.Errorf("api env known=%v refs=%v, want DATABASE_URL unknown until db is placed", env.Known(), env.Refs)
			}
			web := mustContainer(t, cfg, "web")
			if len(web.Links) != 1 || web.Links[0].Target != "api" || web.Links[0].Alias != "backend" || web.Links[0].Port != 8080 {
				t.Errorf("web links = %+v, want api as backend on port 8080", web.Links)
			}
			if !slices.Equal(web.Deps, []string{"api"}) || web.Placement.Labels["tier"] != "edge" {
				t.Errorf("web deps = %v, placement labels = %v", web.Deps, web.Placement.Labels)
			}
			if o := mustOutput(t, cfg, "web_urls"); o.Value.Known() {
				t.Error("web_urls is known at decode time; want (known after apply)")
			}
		},
	},
	{
		name: "pr-review",
		dir:  "pr-review",
		check: func(t *testing.T, cfg *hclspec.Config) {
			if got := hostNames(cfg); !slices.Equal(got, []string{"node1", "node2", "node3"}) {
				t.Errorf("hosts = %v, want node1, node2, node3", got)
			}
			// plan -refresh=false places only on hosts that declare capacity.
			for _, h := range cfg.Hosts {
				if h.Capacity == nil || h.Capacity.MilliCPU == 0 || h.Capacity.MemoryBytes == 0 {
					t.Errorf("host %s declares no capacity: the pull-request plan could place nothing there", h.Name)
				}
			}
			if c := cfg.Hosts[0].Capacity; c.MilliCPU != 2000 || c.MemoryBytes != 2<<30 {
				t.Errorf("node1 capacity = %+v, want 2 CPUs and 2GiB", *c)
			}
			wantInstances(t, cfg, "db", 1)
			api := wantInstances(t, cfg, "api", 3)
			if v := cfg.Variable("api_image"); v == nil || v.Source != "default" || api.Instances[2].Image != "dockplan-testapp:dev" {
				t.Errorf("api image = %q, want var.api_image's default dockplan-testapp:dev", api.Instances[2].Image)
			}
			if len(api.Links) != 1 || api.Links[0].Target != "db" || !api.Placement.DistinctHosts {
				t.Errorf("api links = %+v distinct_hosts=%v, want a link to db and distinct hosts", api.Links, api.Placement.DistinctHosts)
			}
			web := wantInstances(t, cfg, "web", 2)
			if p := web.Instances[1].Ports; len(p) != 1 || p[0].HostPort != 18081 {
				t.Errorf("web ports = %+v, want 18081:8080", p)
			}
		},
	},
	{
		name: "variables",
		dir:  "variables",
		check: func(t *testing.T, cfg *hclspec.Config) {
			token := cfg.Variable("api_token")
			if token == nil || !token.Sensitive || !token.Value.HasMark(hclspec.Sensitive) {
				t.Fatalf("api_token = %+v, want a sensitive variable whose value carries the Sensitive mark", token)
			}
			if !cfg.Locals["auth_header"].HasMark(hclspec.Sensitive) {
				t.Error("local.auth_header lost the Sensitive mark of var.api_token")
			}
			app := wantInstances(t, cfg, "app", 2) // replicas["staging"]
			env := app.Instances[1].Env.Value
			if v := env.Index(cty.StringVal("AUTHORIZATION")); !v.HasMark(hclspec.Sensitive) {
				t.Error("env AUTHORIZATION is not marked sensitive")
			}
			if v := env.Index(cty.StringVal("INSTANCE")); v.HasMark(hclspec.Sensitive) || v.AsString() != "staging-01" {
				t.Errorf("env INSTANCE = %#v, want staging-01 and not sensitive", v)
			}
			if v := env.Index(cty.StringVal("MOTD")); v.AsString() != "Welcome to the dockplan variables example." {
				t.Errorf("env MOTD = %#v, want the text of motd.txt", v)
			}
			if got := app.Instances[0].Resources.MemoryBytes; got != 48<<20 {
				t.Errorf("memory = %d, want 48MiB", got)
			}
			if o := mustOutput(t, cfg, "authorization"); !o.Sensitive || !o.Value.Value.HasMark(hclspec.Sensitive) {
				t.Errorf("output authorization: sensitive=%v, want a sensitive output holding a marked value", o.Sensitive)
			}
			if o := mustOutput(t, cfg, "token_length"); o.Value.Value.IsMarked() {
				t.Error("nonsensitive() left a mark on token_length")
			}
		},
	},
}

func TestExamples(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			cfg := load(t, ex.dir, hclspec.LoadOptions{})
			ex.check(t, cfg)
		})
	}
}

// TestVariablesSources loads the variables example with every value source:
// -var over -var-file over DOCKPLAN_VAR_ over the default.
func TestVariablesSources(t *testing.T) {
	varFile := filepath.Join("variables", "prod.hcl")
	cfg := load(t, "variables", hclspec.LoadOptions{
		Vars:     []string{"memory_mib=96", `features=["search"]`},
		VarFiles: []string{varFile},
		Environ:  []string{"DOCKPLAN_VAR_environment=dev", "DOCKPLAN_VAR_debug=true", "DOCKPLAN_VAR_api_token=from-the-environment"},
	})
	tests := []struct {
		name   string
		source string
		want   cty.Value
	}{
		{name: "environment", source: varFile, want: cty.StringVal("prod")},
		{name: "memory_mib", source: "-var", want: cty.NumberIntVal(96)},
		{name: "features", source: "-var", want: cty.ListVal([]cty.Value{cty.StringVal("search")})},
		{name: "debug", source: "environment", want: cty.True},
		{name: "api_token", source: "environment", want: cty.StringVal("from-the-environment").Mark(hclspec.Sensitive)},
		{name: "owner", source: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := cfg.Variable(tt.name)
			if v == nil {
				t.Fatalf("no variable %q", tt.name)
			}
			if v.Source != tt.source {
				t.Errorf("source = %q, want %q", v.Source, tt.source)
			}
			if tt.want != cty.NilVal && !v.Value.RawEquals(tt.want) {
				t.Errorf("value = %#v, want %#v", v.Value, tt.want)
			}
		})
	}
	wantInstances(t, cfg, "app", 3) // replicas["prod"]
}

// TestEveryExampleIsListed fails when a folder holds *.dockplan.hcl files
// that the examples table does not load, so no example goes untested.
func TestEveryExampleIsListed(t *testing.T) {
	found := map[string]bool{}
	for _, f := range configFiles(t) {
		found[filepath.ToSlash(filepath.Dir(f))] = true
	}
	listed := map[string]bool{}
	for _, ex := range examples {
		listed[ex.dir] = true
	}
	for _, dir := range sortedKeys(found) {
		if !listed[dir] {
			t.Errorf("%s holds *%s files but is not in the examples table", dir, hclspec.FileSuffix)
		}
	}
	for _, dir := range sortedKeys(listed) {
		if !found[dir] {
			t.Errorf("the examples table lists %s, which holds no *%s file", dir, hclspec.FileSuffix)
		}
	}
}

// TestFormatted checks that every example is in canonical style, as
// `dockplan fmt -check -recursive examples` requires.
func TestFormatted(t *testing.T) {
	for _, f := range configFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hclwrite.Format(src), src) {
			t.Errorf("%s is not formatted; run dockplan fmt -recursive examples", f)
		}
	}
}

// configFiles returns every *.dockplan.hcl file under the examples folder.
func configFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(e.Name(), hclspec.FileSuffix) {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	return files
}

// load decodes dir and fails on any diagnostic: an example must not even
// warn.
func load(t *testing.T, dir string, opts hclspec.LoadOptions) *hclspec.Config {
	t.Helper()
	cfg, _, diags := hclspec.Load(dir, opts)
	for _, d := range diags {
		t.Errorf("%s: %v", dir, d)
	}
	if cfg == nil {
		t.Fatalf("%s: no configuration", dir)
	}
	return cfg
}

func mustContainer(t *testing.T, cfg *hclspec.Config, name string) *hclspec.Container {
	t.Helper()
	c := cfg.Container(name)
	if c == nil {
		t.Fatalf("no container %q", name)
	}
	return c
}

func wantInstances(t *testing.T, cfg *hclspec.Config, name string, n int) *hclspec.Container {
	t.Helper()
	c := mustContainer(t, cfg, name)
	if len(c.Instances) != n {
		t.Fatalf("container %s has %d instances, want %d", name, len(c.Instances), n)
	}
	return c
}

func mustOutput(t *testing.T, cfg *hclspec.Config, name string) *hclspec.Output {
	t.Helper()
	for _, o := range cfg.Outputs {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no output %q", name)
	return nil
}

func hostNames(cfg *hclspec.Config) []string {
	var names []string
	for _, h := range cfg.Hosts {
		names = append(names, h.Name)
	}
	return names
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

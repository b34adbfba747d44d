package hclspec_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

// stateSrc is a configuration whose state block starts on line 3.
func stateSrc(block string) map[string][]byte {
	return map[string][]byte{"main.dockplan.hcl": []byte("project = \"shop\"\n\n" + block + "\n")}
}

func TestStateBlock(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  *hclspec.StateConfig
	}{
		{name: "no block", block: "", want: nil},
		{
			name:  "file",
			block: "state {\n  backend = \"file\"\n  path    = \"state/shop.json\"\n}",
			want:  &hclspec.StateConfig{Backend: hclspec.StateFile, Path: filepath.Join("conf", "state/shop.json")},
		},
		{
			name:  "file with an absolute path",
			block: "state {\n  backend = \"file\"\n  path    = \"/var/lib/dockplan/shop.json\"\n}",
			want:  &hclspec.StateConfig{Backend: hclspec.StateFile, Path: "/var/lib/dockplan/shop.json"},
		},
		{
			name: "etcd with everything",
			block: `state {
  backend      = "etcd"
  endpoints    = ["https://10.0.0.5:2379", "https://10.0.0.6:2379/"]
  prefix       = "dockplan/shop/"
  dial_timeout = "2s"
  lock_ttl     = "15s"
  tls {
    ca_file   = "etcd/ca.pem"
    cert_file = "/etc/dockplan/client.pem"
    key_file  = "/etc/dockplan/client-key.pem"
  }
}`,
			want: &hclspec.StateConfig{
				Backend: hclspec.StateEtcd, Endpoints: []string{"https://10.0.0.5:2379", "https://10.0.0.6:2379"},
				Prefix: "dockplan/shop", DialTimeout: 2 * time.Second, LockTTL: 15 * time.Second,
				TLS: &hclspec.StateTLS{CAFile: filepath.Join("conf", "etcd/ca.pem"), CertFile: "/etc/dockplan/client.pem", KeyFile: "/etc/dockplan/client-key.pem"},
			},
		},
		{
			name:  "etcd on loopback without TLS, functions allowed",
			block: "state {\n  backend   = \"etcd\"\n  endpoints = [\"http://127.0.0.1:2379\"]\n  prefix    = lower(\"Dockplan/Shop\")\n}",
			want:  &hclspec.StateConfig{Backend: hclspec.StateEtcd, Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "dockplan/shop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, diags := hclspec.LoadSources("conf", stateSrc(tt.block), hclspec.LoadOptions{})
			if len(diags) > 0 {
				t.Fatalf("diagnostics: %v", diags)
			}
			if diff := cmp.Diff(tt.want, cfg.State, cmpopts.IgnoreFields(hclspec.StateConfig{}, "DeclRange")); diff != "" {
				t.Errorf("State (-want +got):\n%s", diff)
			}
			if tt.want != nil && cfg.State.Where() != "main.dockplan.hcl:3" {
				t.Errorf("Where() = %q, want main.dockplan.hcl:3", cfg.State.Where())
			}
		})
	}
}

// TestStateBlockInvalid checks every refusal: its summary, the line it
// points at, and words of its detail that say what to do.
func TestStateBlockInvalid(t *testing.T) {
	tests := []struct {
		name    string
		block   string
		summary string
		line    int
		detail  string
		warning bool
	}{
		{name: "unknown backend", block: "state {\n  backend = \"etcdd\"\n}", summary: "Unknown state backend", line: 4, detail: `Did you mean "etcd"?`},
		{name: "no backend", block: "state {\n  path = \"x.json\"\n}", summary: "Missing required argument", line: 3, detail: "backend"},
		{name: "file without path", block: "state {\n  backend = \"file\"\n}", summary: "Missing state file path", line: 3, detail: "Remove the whole block"},
		{name: "file with an empty path", block: "state {\n  backend = \"file\"\n  path = \"\"\n}", summary: "Invalid state file path", line: 5, detail: "must name a file"},
		{name: "file with endpoints", block: "state {\n  backend = \"file\"\n  path = \"a.json\"\n  endpoints = [\"http://127.0.0.1:2379\"]\n}", summary: "Attribute of another backend", line: 6, detail: `endpoints applies to backend = "etcd"`},
		{name: "file with tls", block: "state {\n  backend = \"file\"\n  path = \"a.json\"\n  tls {\n    ca_file = \"ca.pem\"\n  }\n}", summary: "Block of another backend", line: 6, detail: "needs none"},
		{name: "etcd with path", block: etcdBlock(`  path = "a.json"`), summary: "Attribute of another backend", line: 7, detail: `path applies to backend = "file"`},
		{name: "etcd without endpoints", block: "state {\n  backend = \"etcd\"\n  prefix = \"p\"\n}", summary: "Missing etcd endpoints", line: 3, detail: "client URLs"},
		{name: "empty endpoints", block: "state {\n  backend = \"etcd\"\n  endpoints = []\n  prefix = \"p\"\n}", summary: "No etcd endpoints", line: 5, detail: "every etcd member"},
		{name: "endpoints not a list", block: "state {\n  backend = \"etcd\"\n  endpoints = \"http://127.0.0.1:2379\"\n  prefix = \"p\"\n}", summary: "Incorrect attribute value type", line: 5},
		{name: "bad scheme", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"tcp://10.0.0.5:2379\"]\n  prefix = \"p\"\n}", summary: "Invalid etcd endpoint", line: 5, detail: "scheme tcp:// is not supported"},
		{name: "not a URL", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"10.0.0.5:2379\"]\n  prefix = \"p\"\n}", summary: "Invalid etcd endpoint", line: 5, detail: "https://10.0.0.5:2379"},
		{name: "no port", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://etcd1\"]\n  prefix = \"p\"\n}", summary: "Invalid etcd endpoint", line: 5, detail: "https://etcd1:2379"},
		{name: "bad port", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://etcd1:99999\"]\n  prefix = \"p\"\n}", summary: "Invalid etcd endpoint", line: 5, detail: "1 to 65535"},
		{name: "path in endpoint", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://etcd1:2379/v3\"]\n  prefix = \"p\"\n}", summary: "Invalid etcd endpoint", line: 5, detail: "only scheme, host and port"},
		{name: "duplicate endpoint", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://e:2379\", \"https://e:2379/\"]\n  prefix = \"p\"\n}", summary: "Duplicate etcd endpoint", line: 5},
		{name: "mixed schemes", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://a:2379\", \"http://127.0.0.1:2379\"]\n  prefix = \"p\"\n}", summary: "Mixed etcd endpoint schemes", line: 5},
		{name: "tls with http", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"http://127.0.0.1:2379\"]\n  prefix = \"p\"\n  tls {\n    ca_file = \"ca.pem\"\n  }\n}", summary: "TLS settings for http:// endpoints", line: 7},
		{name: "plain http off loopback", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"http://10.0.0.5:2379\"]\n  prefix = \"p\"\n}", summary: "Unencrypted etcd connection", line: 5, detail: "Use https://", warning: true},
		{name: "no prefix", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://a:2379\"]\n}", summary: "Missing etcd key prefix", line: 3, detail: "its own"},
		{name: "bad prefix", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://a:2379\"]\n  prefix = \"shop state\"\n}", summary: "Invalid etcd key prefix", line: 6},
		{name: "empty prefix", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://a:2379\"]\n  prefix = \"\"\n}", summary: "Invalid etcd key prefix", line: 6},
		{name: "bad dial_timeout", block: etcdBlock(`  dial_timeout = "soon"`), summary: "Invalid duration", line: 7, detail: "not a duration"},
		{name: "dial_timeout too short", block: etcdBlock(`  dial_timeout = "10ms"`), summary: "Invalid duration", line: 7, detail: "from 1s to 5m0s"},
		{name: "lock_ttl too long", block: etcdBlock(`  lock_ttl = "1h"`), summary: "Invalid duration", line: 7, detail: "from 1s to 10m0s"},
		{name: "username in the file", block: etcdBlock(`  username = "root"`), summary: "Credentials do not belong in the configuration", line: 3, detail: "DOCKPLAN_ETCD_USERNAME"},
		{name: "password in the file", block: etcdBlock(`  password = "hunter2"`), summary: "Credentials do not belong in the configuration", line: 3, detail: "(line 7)"},
		{name: "credentials in a URL", block: "state {\n  backend = \"etcd\"\n  endpoints = [\"https://root:hunter2@a:2379\"]\n  prefix = \"p\"\n}", summary: "Invalid etcd endpoint", line: 3, detail: "DOCKPLAN_ETCD_PASSWORD"},
		{name: "variable in the block", block: "state {\n  backend = \"etcd\"\n  endpoints = [var.ep]\n  prefix = \"p\"\n}\nvariable \"ep\" {\n  default = \"http://127.0.0.1:2379\"\n}", summary: "References are not allowed here", line: 5, detail: "read before variables"},
		{name: "empty tls block", block: etcdBlock("  tls {\n  }"), summary: "Empty tls block", line: 7},
		{name: "cert without key", block: etcdBlock("  tls {\n    cert_file = \"c.pem\"\n  }"), summary: "Incomplete client certificate", line: 7, detail: "key_file"},
		{name: "empty ca_file", block: etcdBlock("  tls {\n    ca_file = \"\"\n  }"), summary: "Empty file name", line: 8},
		{name: "two tls blocks", block: etcdBlock("  tls {\n    ca_file = \"a.pem\"\n  }\n  tls {\n    ca_file = \"b.pem\"\n  }"), summary: "Duplicate tls block", line: 10},
		{name: "unknown attribute", block: etcdBlock(`  endpoint = "x"`), summary: "Unsupported argument", line: 7},
		{name: "labels", block: "state \"etcd\" {\n  backend = \"file\"\n  path = \"a\"\n}", summary: "Extraneous label for state", line: 3},
		{name: "two state blocks", block: "state {\n  backend = \"file\"\n  path = \"a.json\"\n}\nstate {\n  backend = \"file\"\n  path = \"b.json\"\n}", summary: "Duplicate state block", line: 7, detail: "main.dockplan.hcl:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, files, diags := hclspec.LoadSources(".", stateSrc(tt.block), hclspec.LoadOptions{})
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Summary == tt.summary {
					found = d
				}
			}
			if found == nil {
				t.Fatalf("no %q diagnostic; got %v", tt.summary, diags)
			}
			if found.Subject == nil || found.Subject.Filename != "main.dockplan.hcl" || found.Subject.Start.Line != tt.line {
				t.Errorf("%q points at %v, want main.dockplan.hcl line %d", tt.summary, found.Subject, tt.line)
			}
			if !strings.Contains(found.Detail, tt.detail) {
				t.Errorf("detail %q does not say %q", found.Detail, tt.detail)
			}
			if tt.warning {
				if found.Severity != hcl.DiagWarning || cfg == nil {
					t.Errorf("want a warning and a usable configuration, got %v", diags)
				}
			} else if cfg != nil || !diags.HasErrors() {
				t.Errorf("want an error and no configuration, got %v", diags)
			}
			var rendered bytes.Buffer
			if err := render.Diagnostics(&rendered, diags, files, render.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(rendered.String(), "hunter2") {
				t.Errorf("the message shows the password:\n%s", rendered.String())
			}
		})
	}
}

// etcdBlock is a valid etcd state block with extra lines from line 7 on.
func etcdBlock(extra string) string {
	return "state {\n  backend   = \"etcd\"\n  endpoints = [\"https://a:2379\"]\n  prefix    = \"p\"\n" + extra + "\n}"
}

// TestLoadState reads only the state block: other blocks may be broken or
// need variables, and a folder without configuration gives the default.
func TestLoadState(t *testing.T) {
	dir := t.TempDir()
	if sc, _, diags := hclspec.LoadState(dir); sc != nil || len(diags) > 0 {
		t.Fatalf("empty folder: %+v %v; want nil and no diagnostics", sc, diags)
	}
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.dockplan.hcl", "project = \"shop\"\nvariable \"n\" {}\ncontainer \"web\" {\n  image = \"nginx\"\n  count = var.n\n}\n")
	write("state.dockplan.hcl", "state {\n  backend   = \"etcd\"\n  endpoints = [\"http://127.0.0.1:2379\"]\n  prefix    = \"dockplan/shop\"\n}\n")
	sc, _, diags := hclspec.LoadState(dir)
	if diags.HasErrors() || sc == nil || sc.Backend != hclspec.StateEtcd || sc.Prefix != "dockplan/shop" {
		t.Fatalf("LoadState = %+v, %v", sc, diags)
	}
	if want := filepath.Join(dir, "state.dockplan.hcl") + ":1"; sc.Where() != want {
		t.Errorf("Where() = %q, want %q", sc.Where(), want)
	}
	if _, _, diags := hclspec.Load(dir, hclspec.LoadOptions{}); !diags.HasErrors() {
		t.Errorf("the full load needs var.n and must fail; the state-only load must not")
	}

	write("state.dockplan.hcl", "state {\n  backend = \"etcd\"\n}\n")
	if sc, _, diags := hclspec.LoadState(dir); sc != nil || !diags.HasErrors() || diags[0].Subject.Start.Line != 1 {
		t.Errorf("an invalid state block: %+v %v; want an error at line 1", sc, diags)
	}
	write("state.dockplan.hcl", "state {\n  backend = \n")
	if sc, _, diags := hclspec.LoadState(dir); sc != nil || !diags.HasErrors() {
		t.Errorf("a syntax error: %+v %v; want an error", sc, diags)
	}
	write("state.dockplan.hcl", "state {\n  backend = \"file\"\n  path = \"x.json\"\n}\n")
	write("more.dockplan.hcl", "state {\n  backend = \"file\"\n  path = \"y.json\"\n}\n")
	_, _, diags = hclspec.LoadState(dir)
	if !diags.HasErrors() || !strings.Contains(fmt.Sprint(diags), "Duplicate state block") {
		t.Errorf("two state blocks in two files: %v; want Duplicate state block", diags)
	}
}

package planner_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dockplan/dockplan/planner"
	"github.com/google/go-cmp/cmp"
)

// TestHardeningAttributes: read_only, init, cap_add, cap_drop and tmpfs
// reach the create configuration, are attributes that need a re-create,
// and change the config hash; leaving them out keeps the hash a
// configuration had before they existed.
func TestHardeningAttributes(t *testing.T) {
	const base = `project = "shop"
container "web" {
  image = "shop/web:1"
%s}
`
	resolve := func(extra string) *planner.Resolved {
		t.Helper()
		cfg := load(t, fmt.Sprintf(base, extra))
		r, err := planner.Resolve(cfg, cfg.Instances()[0], planner.NewWorld())
		if err != nil || !r.Known {
			t.Fatalf("resolve: %v, known %v", err, r != nil && r.Known)
		}
		return r
	}
	plain := resolve("")
	// The hash dockplan gave this configuration before the attributes
	// existed (commit 461b345).
	if plain.Hash != plainHashBefore {
		t.Errorf("hash %s, want %s as before", plain.Hash, plainHashBefore)
	}
	hard := resolve(`  read_only = true
  init      = true
  cap_add   = ["net_bind_service"]
  cap_drop  = ["CAP_ALL"]
  tmpfs     = ["/tmp", "/run:size=64m,mode=1777"]
`)
	if diff := cmp.Diff(map[string]string{"/run": "size=64m,mode=1777", "/tmp": ""}, hard.Spec.Tmpfs); diff != "" {
		t.Errorf("tmpfs (-want +got):\n%s", diff)
	}
	if !hard.Spec.ReadOnly || !hard.Spec.Init || !slices.Equal(hard.Spec.CapAdd, []string{"NET_BIND_SERVICE"}) || !slices.Equal(hard.Spec.CapDrop, []string{"ALL"}) {
		t.Errorf("spec = %+v", hard.Spec)
	}
	attrs := map[string]planner.Attr{}
	for _, a := range hard.Attrs {
		attrs[a.Path] = a
	}
	want := map[string]string{"read_only": "true", "init": "true", "cap_add": `["NET_BIND_SERVICE"]`, "cap_drop": `["ALL"]`,
		"tmpfs": `["/run:size=64m,mode=1777", "/tmp"]`}
	for path, v := range want {
		if a, ok := attrs[path]; !ok || a.Value != v || !a.Replace {
			t.Errorf("attribute %s = %+v, want %q needing a re-create", path, a, v)
		}
	}
	for _, a := range plain.Attrs {
		if _, ok := want[a.Path]; ok {
			t.Errorf("attribute %s present although not declared", a.Path)
		}
	}
	if hard.Hash == plain.Hash {
		t.Error("the hardening attributes do not change the config hash")
	}
	if got := resolve("  read_only = false\n  init = false\n  cap_add = []\n  tmpfs = []\n"); got.Hash != plain.Hash {
		t.Errorf("declaring the defaults changed the hash: %s, want %s", got.Hash, plain.Hash)
	}
	logged := resolve(`  shm_size = "128MiB"
  logging {
    driver  = "json-file"
    options = { max-size = "10m", max-file = "3" }
  }
`)
	if logged.Spec.ShmSize != 128<<20 || logged.Spec.LogDriver != "json-file" || logged.Spec.LogOptions["max-file"] != "3" {
		t.Errorf("spec = %+v", logged.Spec)
	}
	attrs = map[string]planner.Attr{}
	for _, a := range logged.Attrs {
		attrs[a.Path] = a
	}
	if a := attrs["logging"]; a.Value != `json-file {"max-file" = "3", "max-size" = "10m"}` || !a.Replace || a.Sensitive {
		t.Errorf("logging attribute = %+v", a)
	}
	if a := attrs["shm_size"]; a.Value != "128MiB" || !a.Replace {
		t.Errorf("shm_size attribute = %+v", a)
	}
	if logged.Hash == plain.Hash {
		t.Error("shm_size and logging do not change the config hash")
	}
	limited := resolve(`  ulimits     = { nofile = "1024:65536", nproc = 512 }
  sysctls     = { "net.core.somaxconn" = "1024" }
  extra_hosts = { "db.internal" = "10.0.0.7" }
`)
	attrs = map[string]planner.Attr{}
	for _, a := range limited.Attrs {
		attrs[a.Path] = a
	}
	for path, v := range map[string]string{"ulimits": `{nofile = "1024:65536", nproc = "512:512"}`,
		"sysctls": `{"net.core.somaxconn" = "1024"}`, "extra_hosts": "db.internal:10.0.0.7"} {
		if a := attrs[path]; a.Value != v || !a.Replace {
			t.Errorf("attribute %s = %+v, want %q needing a re-create", path, a, v)
		}
	}
	if limited.Hash == plain.Hash {
		t.Error("ulimits, sysctls and extra_hosts do not change the config hash")
	}
}

// TestSensitiveLogOption: a log option holding a secret (a log service's
// token) is a sensitive attribute: the plan never shows it.
func TestSensitiveLogOption(t *testing.T) {
	cfg := load(t, `project = "shop"
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cr3t-token"
}
container "web" {
  image = "shop/web:1"
  logging {
    driver  = "splunk"
    options = { splunk-token = var.token, splunk-url = "https://127.0.0.1:8088" }
  }
}
`)
	r, err := planner.Resolve(cfg, cfg.Instances()[0], planner.NewWorld())
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.LogOptions["splunk-token"] != "s3cr3t-token" {
		t.Errorf("the create configuration lacks the token: %v", r.Spec.LogOptions)
	}
	if !slices.Contains(r.SensitivePaths(), "logging") {
		t.Errorf("sensitive paths %v lack logging", r.SensitivePaths())
	}
}

const plainHashBefore = "d116333a1203db4c2d1115904545c9bc"

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// TestOutputCommand: dockplan output in every form, from a state and a
// configuration alone; a sensitive output never shows, and the errors
// say what to do.
func TestOutputCommand(t *testing.T) {
	const secret = "CANARY-out-7731"
	dir := t.TempDir()
	cfg := `project = "shop"
host "node1" {
  address = "tcp://127.0.0.1:1"
}
variable "token" {
  type      = string
  sensitive = true
  default   = "` + secret + `"
}
container "api" {
  image = "shop/api:1"
  ports = ["8080"]
}
output "api_address" {
  value = container.api.address
}
output "names" {
  value = [container.api.name]
}
output "token" {
  value     = var.token
  sensitive = true
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runDockplan(t, dir, "output")
	if code != 0 || !strings.Contains(out, "api_address = (known after apply)") {
		t.Fatalf("output before any apply exited %d:\n%s%s", code, out, stderr)
	}
	if _, stderr, code := runDockplan(t, dir, "output", "-raw", "api_address"); code != ExitError || !strings.Contains(stderr, "run dockplan apply first") {
		t.Errorf("output -raw of an unknown value exited %d:\n%s", code, stderr)
	}

	st := state.New("shop", "00000000-0000-4000-8000-000000000009")
	st.Serial = 1
	st.Instances["api"] = &state.Instance{Address: "api", Container: "api", Host: "node1", HostAddress: "10.0.0.1", Name: "shop-api-0",
		Ports: []engine.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostPort: 32768}}}
	if err := state.NewFile(filepath.Join(dir, state.DefaultPath)).Save(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"output"}, 0, "api_address = \"10.0.0.1:32768\"\nnames       = [\"shop-api-0\"]\ntoken       = (sensitive value)\n"},
		{[]string{"output", "api_address"}, 0, "\"10.0.0.1:32768\"\n"},
		{[]string{"output", "-raw", "api_address"}, 0, "10.0.0.1:32768\n"},
		{[]string{"output", "-json", "names"}, 0, `"value": [
    "shop-api-0"
  ]`},
		{[]string{"output", "-json"}, 0, `"token": {
    "sensitive": true,
    "known": true,`},
		{[]string{"output", "-raw", "token"}, ExitError, "is sensitive, and dockplan never prints a sensitive value"},
		{[]string{"output", "-raw", "names"}, ExitError, "-raw prints only strings, numbers and bools; use -json"},
		{[]string{"output", "-raw"}, ExitError, "-raw prints one output: name it"},
		{[]string{"output", "-raw", "-json", "names"}, ExitError, "exclude each other"},
		{[]string{"output", "nope"}, ExitError, `no output "nope"; it declares "api_address", "names", "token"`},
	} {
		out, stderr, code := runDockplan(t, dir, tt.args...)
		all.WriteString(out + stderr)
		if code != tt.code || !strings.Contains(out+stderr, tt.want) {
			t.Errorf("dockplan %s exited %d, want %d and %q:\n%s%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out, stderr)
		}
	}
	if strings.Contains(all.String(), secret) {
		t.Errorf("the secret shows in dockplan output:\n%s", all.String())
	}
}

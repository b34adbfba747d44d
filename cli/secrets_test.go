package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// canary is the secret the tests look for. "s3cr3t" alone is searched too,
// so a secret cut or quoted differently is still caught.
const canary = "CANARY-s3cr3t-7f2a"

// secretConfig puts a sensitive variable into every place that may hold
// one: env (plain and in a template), command, labels, health.command and
// a sensitive output. extra goes into the container block.
func secretConfig(count int, extra string) string {
	return `project = "demo"

variable "api_token" {
  type      = string
  sensitive = true
}

variable "pin" {
  type      = number
  sensitive = true
  default   = 1234
}

host "node1" {
  address = "tcp://127.0.0.1:1"
  capacity {
    cpu    = 2
    memory = "2GiB"
  }
}

container "api" {
  image   = "nginx:1.25"
  count   = ` + strconv.Itoa(count) + `
  ports   = ["8080"]
  env     = { API_TOKEN = var.api_token, AUTH = "Bearer ${var.api_token}", PIN = var.pin }
  command = ["serve", "--token", var.api_token]
  labels  = { token = var.api_token }
  health {
    command = ["CMD", "/check", var.api_token]
  }
  resources {
    cpu    = 0.5
    memory = "256MiB"
  }
  ` + extra + `
}

output "token" {
  value     = var.api_token
  sensitive = true
}
`
}

// noCanary fails when out holds the secret.
func noCanary(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, canary) || strings.Contains(out, "s3cr3t") {
		t.Errorf("%s shows the secret:\n%s", what, out)
	}
}

// TestSecretsStayHidden: a sensitive value given with -var or
// DOCKPLAN_VAR_ never shows in what dockplan prints (validate, plan in
// every format, show of a saved plan in every format), while the saved
// plan, which apply needs it in, holds it and is mode 0600. Everything
// runs offline (-refresh=false with declared capacity). Apply progress and
// the daemon's logs need real engines: e2e covers them.
func TestSecretsStayHidden(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.dockplan.hcl"), secretConfig(2, ""))
	secretVar := []string{"-var", "api_token=" + canary}

	for _, args := range [][]string{
		{"validate"}, {"validate", "-json"},
		{"plan", "-refresh=false"}, {"plan", "-refresh=false", "-json"}, {"plan", "-refresh=false", "-format=markdown"},
	} {
		stdout, stderr, code := runDockplan(t, dir, append(args, secretVar...)...)
		if code != ExitOK {
			t.Fatalf("dockplan %v: exit %d\n%s", args, code, stderr)
		}
		noCanary(t, strings.Join(args, " "), stdout+stderr)
	}
	// The secret from the environment instead of -var.
	stdout, stderr, code := runDockplanEnv(t, dir, []string{"DOCKPLAN_VAR_api_token=" + canary}, "plan", "-refresh=false")
	if code != ExitOK {
		t.Fatalf("plan with DOCKPLAN_VAR_api_token: exit %d\n%s", code, stderr)
	}
	noCanary(t, "plan with DOCKPLAN_VAR_api_token", stdout+stderr)
	if !strings.Contains(stdout, "(sensitive value)") {
		t.Errorf("plan does not mark the sensitive values:\n%s", stdout)
	}

	// A saved plan: written 0600 (even over a file that was 0644), holds
	// the secret, and show never prints it.
	planFile := filepath.Join(dir, "secret.plan")
	writeFile(t, planFile, "old")
	if err := os.Chmod(planFile, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runDockplan(t, dir, append([]string{"plan", "-refresh=false", "-out", "secret.plan"}, secretVar...)...)
	if code != ExitOK {
		t.Fatalf("plan -out: exit %d\n%s", code, stderr)
	}
	noCanary(t, "plan -out", stdout+stderr)
	info, err := os.Stat(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("saved plan has mode %v, want 0600: it holds secrets", mode)
	}
	if data, _ := os.ReadFile(planFile); !strings.Contains(string(data), canary) {
		t.Error("the saved plan does not hold the secret, so apply could not use it")
	}
	for _, args := range [][]string{{"show", "secret.plan"}, {"show", "-json", "secret.plan"}, {"show", "-format=markdown", "secret.plan"}} {
		stdout, stderr, code := runDockplan(t, dir, args...)
		if code != ExitOK {
			t.Fatalf("dockplan %v: exit %d\n%s", args, code, stderr)
		}
		noCanary(t, strings.Join(args, " "), stdout+stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "dockplan.state.json")); err == nil {
		t.Error("an offline plan wrote a state file")
	}
}

// TestSecretsStayOutOfErrors: errors that involve a sensitive value name
// the place and the problem, never the value.
func TestSecretsStayOutOfErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		args   []string
		want   string
	}{
		{name: "wrong type in an expression", config: secretConfig(2, `working_dir = var.api_token * 2`),
			args: []string{"validate"}, want: "Invalid operand"},
		{name: "tonumber of the secret", config: secretConfig(2, "") + "locals { n = tonumber(var.api_token) }\n",
			args: []string{"validate"}, want: `cannot convert (sensitive value) to number`},
		{name: "tonumber of the secret, as JSON", config: secretConfig(2, "") + "locals { n = tonumber(var.api_token) }\n",
			args: []string{"validate", "-json"}, want: `cannot convert (sensitive value) to number`},
		{name: "file() named by the secret", config: secretConfig(2, "") + "locals { f = file(var.api_token) }\n",
			args: []string{"plan", "-refresh=false"}, want: "cannot read (sensitive value)"},
		{name: "secret in the image", config: strings.Replace(secretConfig(2, ""), `"nginx:1.25"`, `"nginx:${var.api_token}"`, 1),
			args: []string{"plan", "-refresh=false"}, want: "Sensitive value not allowed"},
		{name: "secret as a label name", config: strings.Replace(secretConfig(2, ""), `labels  = { token = var.api_token }`, `labels = { (var.api_token) = "x" }`, 1),
			args: []string{"validate"}, want: "Sensitive value not allowed"},
		{name: "secret as env names", config: strings.Replace(secretConfig(2, ""), `env     = { API_TOKEN = var.api_token, AUTH = "Bearer ${var.api_token}", PIN = var.pin }`, `env = { (var.api_token) = "x" }`, 1),
			args: []string{"plan", "-refresh=false"}, want: "Sensitive value not allowed"},
		{name: "secret of the wrong type", config: secretConfig(2, ""),
			args: []string{"validate", "-var", "pin=" + canary}, want: "Invalid value for variable"},
		{name: "failing validation of the secret", config: secretConfig(2, "") + `variable "checked" {
  type      = string
  sensitive = true
  default   = "` + "x" + `"
  validation {
    condition     = strlen(var.checked) < 10
    error_message = "Too long: ${var.checked}."
  }
}
`, args: []string{"validate", "-var", "checked=" + canary}, want: "Invalid value for variable"},
		{name: "plan that cannot place", config: secretConfig(9, ""), args: []string{"plan", "-refresh=false", "-out", "x.plan"},
			want: "cannot place every container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "main.dockplan.hcl"), tt.config)
			args := append(tt.args, "-var", "api_token="+canary)
			stdout, stderr, code := runDockplan(t, dir, args...)
			if code != ExitError {
				t.Errorf("exit code %d, want 1\n%s", code, stderr)
			}
			noCanary(t, "the error", stdout+stderr)
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("want %q, got:\n%s%s", tt.want, stdout, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.plan")); err == nil {
				t.Error("a failed plan wrote its plan file")
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// secretCanary is the sensitive value the canary tests look for; "s3cr3t"
// alone is searched too, so a secret cut or quoted differently is caught.
const secretCanary = "CANARY-s3cr3t-7f2a"

// canaryConfig puts a sensitive variable into env (plain and in a
// template) and a label of api, and into the health command of checker,
// whose check fails quoting it (testapp rejects it as a -hold size), so
// that dep, which waits for checker, fails with the check's output.
const canaryConfig = `
variable "api_token" {
  type      = string
  sensitive = true
}

container "api" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  count        = 2
  restart      = "unless-stopped"
  env = {
    API_TOKEN = var.api_token
    AUTH      = "Bearer ${var.api_token}"
  }
  labels = {
    token = var.api_token
  }
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}

container "checker" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  restart      = "unless-stopped"
  env = {
    API_TOKEN = var.api_token
  }
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
  health {
    command  = ["CMD", "/testapp", "-healthcheck", "-hold", var.api_token]
    interval = "1s"
    retries  = 1
  }
}

container "dep" {
  image        = "dockplan-testapp:dev"
  image_source = "local"
  depends_on   = [container.checker]
  resources {
    cpu    = 0.05
    memory = "32MiB"
  }
}

output "api_token" {
  value     = var.api_token
  sensitive = true
}
`

// noSecret fails when out shows the canary secret.
func noSecret(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, secretCanary) || strings.Contains(out, "s3cr3t") {
		t.Errorf("%s shows the secret:\n%s", what, out)
	}
}

// TestSecretsStayOutOfApplyAndDaemonLogs: a sensitive variable's value
// never appears in apply's progress (text and -json), not even in a
// failed health check's output that quotes it, nor in the one-shot
// reconcile's output, nor in the reconcile daemon's logs (text and json)
// while it starts, re-creates and restarts containers that carry it;
// while the containers do get it.
func TestSecretsStayOutOfApplyAndDaemonLogs(t *testing.T) {
	l := labenv.RequireHosts(t, 3)
	p := labProject(t, l, "e2esec", canaryConfig)
	secret := []string{"-var", "api_token=" + secretCanary}

	for _, args := range [][]string{{"apply", "-auto-approve"}, {"apply", "-json"}} {
		out, code := p.run(append(args, secret...)...)
		what := strings.Join(args, " ")
		noSecret(t, what, out)
		// dep fails waiting for checker, with the check's output.
		if code != 1 || !strings.Contains(out, "last health check") || !strings.Contains(out, `size \"(sensitive value)\"`) &&
			!strings.Contains(out, `size "(sensitive value)"`) {
			t.Errorf("%s exited %d; want 1 with checker's failed health check shown, the secret hidden:\n%s", what, code, out)
		}
		// The outputs follow the summary, the sensitive one hidden.
		if !strings.Contains(out, "api_token = (sensitive value)") && !strings.Contains(out, `"api_token":{"sensitive":true,"known":true,"type":"string","value":null}`) {
			t.Errorf("%s did not print the api_token output hidden:\n%s", what, out)
		}
	}
	for _, args := range [][]string{{"output"}, {"output", "-json"}, {"output", "api_token"}, {"output", "-raw", "api_token"}} {
		out, _ := p.run(append(args, secret...)...)
		noSecret(t, strings.Join(args, " "), out)
	}
	st := p.state()
	api0, api1 := st.Instances["api[0]"], st.Instances["api[1]"]
	if api0 == nil || api1 == nil {
		t.Fatalf("state has %v, want api[0] and api[1]", st.Addresses())
	}
	h, err := l.Host(api0.Host)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inspectEnv(t, l, labelled{host: h.Name, id: api0.ContainerID, name: api0.Name}), "API_TOKEN="+secretCanary) {
		t.Fatalf("api[0] does not have the secret in its env: the test checks nothing")
	}

	p.dockerOn(api0, "stop", api0.Name)
	out, code := p.run(append([]string{"reconcile"}, secret...)...)
	noSecret(t, "reconcile", out)
	if !strings.Contains(out, "api[0]: Started") {
		t.Errorf("reconcile exited %d without starting api[0]:\n%s", code, out)
	}

	for _, format := range []string{"text", "json"} {
		t.Run("daemon "+format, func(t *testing.T) {
			tp := *p
			tp.t = t
			checkDaemonHidesSecret(&tp, format, secret)
		})
	}
}

// checkDaemonHidesSecret runs the reconcile daemon with -log-format
// format while api[0] is stopped and api[1] removed by hand, waits for
// both repairs, stops it with SIGTERM and checks that its output never
// shows the canary secret.
func checkDaemonHidesSecret(p *project, format string, secret []string) {
	t := p.t
	t.Helper()
	st := p.state()
	api0, api1 := st.Instances["api[0]"], st.Instances["api[1]"]
	d := p.launch(append([]string{"reconcile", "-daemon", "-log-format", format, "-interval", "5s"}, secret...)...)
	if !d.waitLine("reconcile daemon started", 1, time.Minute) {
		out, code := d.wait(time.Minute)
		t.Fatalf("the daemon did not start (exit %d):\n%s", code, out)
	}
	p.dockerOn(api0, "stop", api0.Name)
	p.dockerOn(api1, "rm", "-f", api1.Name)
	p.waitInstanceRunning(api0, "")
	p.waitInstanceRunning(api1, api1.ContainerID)
	for _, msg := range []string{"started container", "re-created container"} {
		if !d.waitLine(msg, 1, time.Minute) {
			t.Errorf("the daemon logged no %q", msg)
		}
	}
	d.signal(syscall.SIGTERM)
	out, code := d.wait(time.Minute)
	t.Logf("daemon log (%s):\n%s", format, out)
	if code != 0 {
		t.Errorf("the daemon exited %d after SIGTERM, want 0", code)
	}
	noSecret(t, "the daemon's "+format+" log", out)
}

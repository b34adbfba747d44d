package applier

import (
	"errors"
	"testing"

	"github.com/dockplan/dockplan/engine"
)

// TestRedactSensitiveLogOptionsAndHealth: log options and health-check
// words marked sensitive are hidden in errors, the others are not.
func TestRedactSensitiveLogOptionsAndHealth(t *testing.T) {
	s := &secrets{values: map[string]bool{}}
	s.addSpec(engine.ContainerSpec{
		LogOptions:  map[string]string{"splunk-token": "tok-8f3e2a"},
		Healthcheck: &engine.Healthcheck{Test: []string{"CMD", "/check", "-key=hk-55aa91"}},
		Env:         []string{"PLAIN=visible-value"},
	}, []string{"logging", "health"})
	got := s.redact(errors.New("splunk refused tok-8f3e2a; check /check -key=hk-55aa91; env visible-value")).Error()
	// Every word of a sensitive health command is hidden, as the plan hides
	// the whole attribute.
	want := "splunk refused (sensitive value); check (sensitive value) (sensitive value); env visible-value"
	if got != want {
		t.Errorf("redacted:\n got %s\nwant %s", got, want)
	}
}

package reconcile

import (
	"strings"
	"time"

	"github.com/dockplan/dockplan/engine"
)

// ActionKind is what a repair did to an instance's container.
type ActionKind int

// Repair actions.
const (
	// ActionNone: the instance needed nothing (it was running, or it left
	// the state before the repair could start).
	ActionNone ActionKind = iota
	// ActionStart started a stopped container.
	ActionStart
	// ActionRecreate created the container again from the create
	// configuration the state holds, with the same name, labels and
	// configuration, and started it.
	ActionRecreate
	// ActionRestart stopped and started a running container whose declared
	// health check reported it unhealthy.
	ActionRestart
)

var actionNames = [...]string{"none", "start", "recreate", "restart"}

// String returns the action's word, as logs and metrics use it.
func (k ActionKind) String() string {
	if k < 0 || int(k) >= len(actionNames) {
		return actionNames[ActionNone]
	}
	return actionNames[k]
}

// Cause is why an instance was looked at.
type Cause int

// Causes of a repair.
const (
	// CauseResync: a listing of the host found it (the one-shot pass, the
	// periodic resync, or a host that answered again).
	CauseResync Cause = iota
	// CauseDie: the container's process exited.
	CauseDie
	// CauseStop: the container was stopped (docker stop).
	CauseStop
	// CauseOOM: the kernel's OOM killer ended the container.
	CauseOOM
	// CauseDestroy: the container was removed (docker rm).
	CauseDestroy
	// CauseUnhealthy: its declared health check reported it unhealthy.
	CauseUnhealthy
)

var causeNames = [...]string{"resync", "die", "stop", "oom", "destroy", "unhealthy"}

// String returns the cause's word, as logs use it.
func (c Cause) String() string {
	if c < 0 || int(c) >= len(causeNames) {
		return causeNames[CauseResync]
	}
	return causeNames[c]
}

// causeOf maps a container event to the cause it gives to act, and false
// for events that need nothing (create, start, kill, which a die follows,
// healthy and starting health statuses).
func causeOf(ev engine.Event) (Cause, bool) {
	switch ev.Action.Base() {
	case engine.ActionDie:
		return CauseDie, true
	case engine.ActionStop:
		return CauseStop, true
	case engine.ActionOOM:
		return CauseOOM, true
	case engine.ActionDestroy:
		return CauseDestroy, true
	case engine.ActionHealthStatus:
		_, status, _ := strings.Cut(string(ev.Action), ":")
		if engine.ParseHealthStatus(strings.TrimSpace(status)) == engine.HealthUnhealthy {
			return CauseUnhealthy, true
		}
	}
	return 0, false
}

// Status is what an instance's container looked like when last seen.
type Status int

// Instance statuses, as the instances metric counts them.
const (
	// StatusUnknown: not seen yet, or its host does not answer.
	StatusUnknown Status = iota
	// StatusRunning: running (or paused, or restarting by the engine's own
	// restart policy), and not unhealthy.
	StatusRunning
	// StatusStopped: created, exited or dead.
	StatusStopped
	// StatusMissing: no container on its host.
	StatusMissing
	// StatusUnhealthy: running, with a declared health check that fails.
	StatusUnhealthy
)

var statusNames = [...]string{"unknown", "running", "stopped", "missing", "unhealthy"}

// String returns the status's word, as metrics use it.
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return statusNames[StatusUnknown]
	}
	return statusNames[s]
}

// Action is one repair as it was carried out, for logs, metrics, the
// one-shot summary and tests.
type Action struct {
	// Kind is what was done.
	Kind ActionKind
	// Address is the instance ("web[1]"); Host its host block.
	Address, Host string
	// Cause is why the instance was looked at; Detail adds the engine's
	// words, such as "exit code 137".
	Cause  Cause
	Detail string
	// ContainerID is the container that runs after the repair (new after a
	// re-create).
	ContainerID string
	// Duration is how long the repair took, lock wait excluded.
	Duration time.Duration
	// Recovery is the time from noticing the problem to the container
	// running again, backoff waits included.
	Recovery time.Duration
	// Repairs counts this instance's repairs since its backoff was last
	// reset, this one included (one-shot passes keep no history: 1).
	Repairs int
	// NextBackoff is how long the instance must wait before another repair.
	NextBackoff time.Duration
	// PortsChanged is set when the container publishes other host ports
	// than the state recorded (Docker picks new ones for unfixed ports on
	// every start): containers that link to it hold the old address until
	// the next apply.
	PortsChanged bool
	// Err is why the repair failed; nil when it worked.
	Err error
}

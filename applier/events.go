package applier

import (
	"time"

	"github.com/dockplan/dockplan/planner"
)

// Phase is where a step is in its life.
type Phase int

const (
	// Started: the step began.
	Started Phase = iota
	// Progress: the step is still running (slow steps, image bytes).
	Progress
	// Done: the step finished.
	Done
	// Failed: the step failed; Err says why.
	Failed
	// Skipped: a dependency failed, so the step did not run.
	Skipped
)

var phaseNames = [...]string{"started", "progress", "done", "failed", "skipped"}

// String returns the phase's name.
func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return "unknown"
	}
	return phaseNames[p]
}

// MarshalText writes the phase's name.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Event reports one moment of one step.
type Event struct {
	Time    time.Time      `json:"time"`
	StepID  string         `json:"step"`
	Action  planner.Action `json:"action"`
	Address string         `json:"address,omitempty"`
	Host    string         `json:"host"`
	Phase   Phase          `json:"phase"`
	// Elapsed is the time since the step started.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Message says what is happening ("waiting for db to be healthy").
	Message string `json:"message,omitempty"`
	// BytesDone and BytesTotal report image pulls and transfers.
	BytesDone  int64 `json:"bytes_done,omitempty"`
	BytesTotal int64 `json:"bytes_total,omitempty"`
	// Err is set for Failed and, naming the failed dependency, Skipped.
	Err string `json:"error,omitempty"`
}

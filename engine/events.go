package engine

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// EventAction is what a container event reports. The values are Docker's
// words; health events carry the status after a colon
// ("health_status: healthy").
type EventAction string

// Container event actions dockplan reacts to. Other actions pass through
// with Docker's word.
const (
	ActionCreate       EventAction = "create"
	ActionStart        EventAction = "start"
	ActionRestart      EventAction = "restart"
	ActionStop         EventAction = "stop"
	ActionKill         EventAction = "kill"
	ActionDie          EventAction = "die"
	ActionOOM          EventAction = "oom"
	ActionDestroy      EventAction = "destroy"
	ActionRename       EventAction = "rename"
	ActionUpdate       EventAction = "update"
	ActionPause        EventAction = "pause"
	ActionUnpause      EventAction = "unpause"
	ActionHealthStatus EventAction = "health_status"
)

// String returns Docker's word for the action.
func (a EventAction) String() string { return string(a) }

// Base returns the action without the detail after a colon, so that
// "health_status: healthy" gives ActionHealthStatus.
func (a EventAction) Base() EventAction {
	base, _, _ := strings.Cut(string(a), ":")
	return EventAction(strings.TrimSpace(base))
}

// ExitCode returns the "exitCode" attribute of a die event, and false when
// the event has none.
func (ev Event) ExitCode() (int, bool) {
	s, ok := ev.Attributes["exitCode"]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Events streams container events. Establishing the stream is bound by the
// endpoint's timeout; after that the stream lives as long as ctx. TCP
// keep-alives (15s) notice a vanished peer; a caller that must notice a
// silent partition sooner resyncs on its own schedule.
func (e *dockerEngine) Events(ctx context.Context, filter EventFilter) (<-chan Event, <-chan error) {
	out := make(chan Event)
	errs := make(chan error, 1)
	args := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))
	for _, l := range labelFilters(filter.Labels) {
		args.Add("label", l)
	}
	opts := events.ListOptions{Filters: args}
	if !filter.Since.IsZero() {
		opts.Since = strconv.FormatInt(filter.Since.Unix(), 10)
	}
	// The Docker client returns only once the engine answered the request
	// (or failed): that is the part the stall guard bounds.
	sctx, g, stop := newStallGuard(ctx, e.timeout)
	msgs, rawErrs := e.cli.Events(sctx, opts)
	g.timer.Stop()
	go func() {
		defer close(out)
		defer stop()
		for {
			select {
			case m := <-msgs:
				select {
				case out <- eventFromDocker(m):
				case <-ctx.Done():
					return
				}
			case err, ok := <-rawErrs:
				if ok && err != nil && ctx.Err() == nil {
					errs <- e.eventsErr(ctx, g, err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errs
}

// eventsErr wraps a stream error; the end of the stream (EOF) is reported
// as the engine going away.
func (e *dockerEngine) eventsErr(ctx context.Context, g *stallGuard, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return NewError(e.hostName, "stream events", "", ErrUnreachable,
			errors.New("the engine closed the event stream"))
	}
	return e.streamErr(ctx, g, "stream events", "", err)
}

func eventFromDocker(m events.Message) Event {
	attrs := m.Actor.Attributes
	ev := Event{
		Action:      EventAction(m.Action),
		ContainerID: m.Actor.ID,
		Name:        attrs["name"],
		Image:       attrs["image"],
		Attributes:  attrs,
	}
	switch {
	case m.TimeNano != 0:
		ev.Time = time.Unix(0, m.TimeNano).UTC()
	case m.Time != 0:
		ev.Time = time.Unix(m.Time, 0).UTC()
	}
	return ev
}

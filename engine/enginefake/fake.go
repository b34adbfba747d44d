package enginefake

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dockplan/dockplan/engine"
)

// Method names an engine.Engine method, for Fail, FailOnce and Calls.
type Method string

// The engine.Engine methods.
const (
	MethodInfo             Method = "Info"
	MethodListContainers   Method = "ListContainers"
	MethodInspectContainer Method = "InspectContainer"
	MethodCreateContainer  Method = "CreateContainer"
	MethodStartContainer   Method = "StartContainer"
	MethodStopContainer    Method = "StopContainer"
	MethodKillContainer    Method = "KillContainer"
	MethodRemoveContainer  Method = "RemoveContainer"
	MethodRenameContainer  Method = "RenameContainer"
	MethodUpdateResources  Method = "UpdateResources"
	MethodUpdateRestart    Method = "UpdateRestartPolicy"
	MethodPullImage        Method = "PullImage"
	MethodImageInspect     Method = "ImageInspect"
	MethodImagePresent     Method = "ImagePresent"
	MethodImageSave        Method = "ImageSave"
	MethodImageLoad        Method = "ImageLoad"
	MethodEnsureNetwork    Method = "EnsureNetwork"
	MethodListNetworks     Method = "ListNetworks"
	MethodRemoveNetwork    Method = "RemoveNetwork"
	MethodEvents           Method = "Events"
)

// String returns the method name.
func (m Method) String() string { return string(m) }

// BaseTime is the fake clock's start; every change advances it by a second,
// so that times are deterministic and ordered.
var BaseTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// eventBuffer is each subscriber's channel capacity. A subscriber that
// falls this far behind loses events (counted by DroppedEvents), as a slow
// reader of a real engine's stream eventually would.
const eventBuffer = 256

// Fake is an in-memory engine.Engine. The zero value is not usable; call
// New. All methods are safe for concurrent use.
type Fake struct {
	mu          sync.Mutex
	hostName    string
	info        engine.Info
	containers  map[string]*container // by ID
	images      map[string]engine.Image
	networks    map[string]engine.Network // by name
	seq         int
	ticks       int
	nextPort    int
	unreachable bool
	failures    map[Method]failure
	calls       []Method
	subscribers map[int]*subscriber
	subSeq      int
	dropped     int
}

type failure struct {
	err  error
	once bool
}

type subscriber struct {
	filter engine.EventFilter
	ch     chan engine.Event
	errs   chan error
}

var _ engine.Engine = (*Fake)(nil)

// New returns an empty, reachable Fake for the host block hostName, with
// 4 CPUs and 8 GiB of memory.
func New(hostName string) *Fake {
	return &Fake{
		hostName: hostName,
		info: engine.Info{
			ID: "FAKE:" + strings.ToUpper(hostName), Name: hostName, ServerVersion: "20.10.24-fake",
			APIVersion: "1.41", ClientAPIVersion: "1.41", OS: "linux", OperatingSystem: "Fake OS",
			Arch: "x86_64", NCPU: 4, MemTotal: 8 << 30, Labels: map[string]string{},
		},
		containers:  map[string]*container{},
		images:      map[string]engine.Image{},
		networks:    map[string]engine.Network{},
		nextPort:    32768,
		failures:    map[Method]failure{},
		subscribers: map[int]*subscriber{},
	}
}

// SetInfo replaces what Info reports (container counts are still computed).
func (f *Fake) SetInfo(info engine.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.info = info
}

// SetUnreachable makes every call fail with engine.ErrUnreachable (true) or
// work again (false). Open event streams end with an error when it is set.
func (f *Fake) SetUnreachable(unreachable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreachable = unreachable
	if unreachable {
		for id, s := range f.subscribers {
			s.errs <- f.unreachableErr("stream events", "")
			close(s.ch)
			delete(f.subscribers, id)
		}
	}
}

// Fail makes every call of method return err until ClearFailures.
func (f *Fake) Fail(method Method, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = failure{err: err}
}

// FailOnce makes the next call of method return err.
func (f *Fake) FailOnce(method Method, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = failure{err: err, once: true}
}

// ClearFailures removes every injected failure.
func (f *Fake) ClearFailures() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = map[Method]failure{}
}

// Calls returns the methods called so far, in order.
func (f *Fake) Calls() []Method {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Method(nil), f.calls...)
}

// CallCount returns how often method was called.
func (f *Fake) CallCount(method Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

// DroppedEvents returns how many events were lost to full subscribers.
func (f *Fake) DroppedEvents() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// HostName returns the host block name given to New.
func (f *Fake) HostName() string { return f.hostName }

// Close ends open event streams. The fake keeps working afterwards, so a
// test can still look at its state.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.subscribers {
		close(s.ch)
		delete(f.subscribers, id)
	}
	return nil
}

// begin records a call and returns the error it must fail with, if any.
// The caller holds f.mu.
func (f *Fake) begin(ctx context.Context, method Method, op, subject string) error {
	f.calls = append(f.calls, method)
	if err := ctx.Err(); err != nil {
		return engine.NewError(f.hostName, op, subject, nil, err)
	}
	if f.unreachable {
		return f.unreachableErr(op, subject)
	}
	if fl, ok := f.failures[method]; ok {
		if fl.once {
			delete(f.failures, method)
		}
		return fl.err
	}
	return nil
}

func (f *Fake) unreachableErr(op, subject string) error {
	return engine.NewError(f.hostName, op, subject, engine.ErrUnreachable,
		errors.New("fake engine is unreachable"))
}

func (f *Fake) notFound(op, subject string) error {
	return engine.NewError(f.hostName, op, subject, engine.ErrNotFound,
		fmt.Errorf("no such object: %s", subject))
}

func (f *Fake) conflict(op, subject, why string) error {
	return engine.NewError(f.hostName, op, subject, engine.ErrConflict, errors.New(why))
}

// now advances and returns the fake clock. The caller holds f.mu.
func (f *Fake) now() time.Time {
	f.ticks++
	return BaseTime.Add(time.Duration(f.ticks) * time.Second)
}

// Info returns the configured Info with live container counts.
func (f *Fake) Info(ctx context.Context) (engine.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, MethodInfo, "info", ""); err != nil {
		return engine.Info{}, err
	}
	info := f.info
	info.Labels = copyMap(info.Labels)
	info.Containers, info.ContainersRunning = len(f.containers), 0
	for _, c := range f.containers {
		if c.State == engine.StateRunning {
			info.ContainersRunning++
		}
	}
	return info, nil
}

// labelsMatch applies engine.ListOptions' label rule.
func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sortedKeys returns m's keys in order, so that nothing ranges over a map
// into output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// publish sends an event to matching subscribers. The caller holds f.mu.
func (f *Fake) publish(c *container, action engine.EventAction, extra map[string]string) {
	attrs := copyMap(c.Spec.Labels)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["name"], attrs["image"] = c.Name, c.Spec.Image
	for k, v := range extra {
		attrs[k] = v
	}
	ev := engine.Event{
		Action: action, ContainerID: c.ID, Name: c.Name, Image: c.Spec.Image,
		Attributes: attrs, Time: f.now(),
	}
	for _, id := range sortedSubscriberIDs(f.subscribers) {
		s := f.subscribers[id]
		if !labelsMatch(c.Spec.Labels, s.filter.Labels) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			f.dropped++
		}
	}
}

func sortedSubscriberIDs(m map[int]*subscriber) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// Events subscribes to container events matching filter. Since is ignored:
// the fake keeps no history. The event channel is closed when ctx ends, on
// Close, or when the fake becomes unreachable (which also sends an error).
func (f *Fake) Events(ctx context.Context, filter engine.EventFilter) (<-chan engine.Event, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make(chan error, 1)
	ch := make(chan engine.Event, eventBuffer)
	if err := f.begin(ctx, MethodEvents, "stream events", ""); err != nil {
		errs <- err
		close(ch)
		return ch, errs
	}
	f.subSeq++
	id := f.subSeq
	f.subscribers[id] = &subscriber{filter: filter, ch: ch, errs: errs}
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if s, ok := f.subscribers[id]; ok {
			close(s.ch)
			delete(f.subscribers, id)
		}
	}()
	return ch, errs
}

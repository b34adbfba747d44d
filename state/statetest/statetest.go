// Package statetest is the conformance suite every state.Backend must
// pass: the local file backend today, a remote one (etcd) later. It checks
// the contract written on state.Backend and state.CheckSave, nothing
// specific to one store.
//
// It imports testing and is meant for _test.go files only.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/state"
)

// Raw is what the suite needs besides state.Backend: reading and writing
// the stored bytes directly, bypassing every check, the way a newer
// dockplan or a damaged store would. The value newBackend returns must
// implement it; a test wrapper around the real backend is the usual way.
type Raw interface {
	// PutRaw stores data as the state.
	PutRaw(t *testing.T, data []byte)
	// GetRaw returns the stored bytes, nil when nothing is stored.
	GetRaw(t *testing.T) []byte
}

// Lineage is the lineage of the states the suite writes.
const Lineage = "0c0ffee0-0000-4000-8000-000000000001"

// otherLineage is another state's lineage.
const otherLineage = "0c0ffee0-0000-4000-8000-000000000002"

// shortWait is how long the suite waits for a lock it expects to be held
// by someone else; longWait for one it expects to get.
const (
	shortWait = 150 * time.Millisecond
	longWait  = 30 * time.Second
)

// Run runs the conformance suite against the backends newBackend returns.
// Each call must return a backend over fresh, empty storage (a new
// temporary directory, a new key prefix) that also implements Raw.
func Run(t *testing.T, newBackend func(t *testing.T) state.Backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, b state.Backend)
	}{
		{name: "load of nothing", run: testLoadNothing},
		{name: "save then load", run: testRoundTrip},
		{name: "serial compare and swap", run: testSerialCAS},
		{name: "first save", run: testFirstSave},
		{name: "invalid state refused", run: testInvalid},
		{name: "lineage mismatch refused", run: testLineage},
		{name: "newer format refused and untouched", run: testNewerFormat},
		{name: "lock is exclusive", run: testLockExclusive},
		{name: "unlock releases", run: testUnlock},
		{name: "force unlock", run: testForceUnlock},
		{name: "concurrent savers under the lock", run: testConcurrentLocked},
		{name: "concurrent savers without the lock", run: testConcurrentUnlocked},
		{name: "large state", run: testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			if _, ok := b.(Raw); !ok {
				t.Fatalf("%T does not implement statetest.Raw; wrap the backend in the test", b)
			}
			tt.run(t, b)
		})
	}
}

// Sample returns a valid state of n instances at serial, with the fields
// a real apply fills (spec, ports, a secret in env) set.
func Sample(serial int64, n int) *state.State {
	s := state.New("shop", Lineage)
	s.Serial = serial
	for i := range n {
		addr := fmt.Sprintf("web[%d]", i)
		name := fmt.Sprintf("shop-web-%d", i)
		s.Instances[addr] = &state.Instance{
			Address: addr, Container: "web", Index: i, Host: fmt.Sprintf("node%d", i%3),
			HostAddress: "10.0.0.1", ContainerID: fmt.Sprintf("%064x", i), Name: name,
			ImageID: "sha256:" + fmt.Sprintf("%064x", 7), ConfigHash: fmt.Sprintf("%016x", i),
			Spec: engine.ContainerSpec{
				Name: name, Image: "registry.local/web:1", Cmd: []string{"/app", "-port", "8080"},
				Env:       []string{"DB_PASSWORD=hunter2", fmt.Sprintf("INDEX=%d", i)},
				Labels:    map[string]string{"dockplan.project": "shop", "dockplan.container": "web", "dockplan.index": fmt.Sprint(i)},
				Ports:     []engine.PortBinding{{ContainerPort: 8080, Protocol: "tcp"}},
				Resources: engine.Resources{NanoCPUs: 5e8, Memory: 64 << 20},
				Restart:   engine.RestartPolicy{Name: engine.RestartUnlessStopped},
				Healthcheck: &engine.Healthcheck{Test: []string{"CMD", "/app", "-healthcheck"},
					Interval: time.Second, Retries: 3},
				StopTimeout: 5 * time.Second,
			},
			Ports:     []engine.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostPort: 32768 + i}},
			Sensitive: []string{"env.DB_PASSWORD"},
		}
	}
	return s
}

// encode returns s's encoding, for comparing states byte for byte.
func encode(t *testing.T, s *state.State) []byte {
	t.Helper()
	if s == nil {
		return nil
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// mustSave saves s and fails the test on error.
func mustSave(t *testing.T, b state.Backend, s *state.State) {
	t.Helper()
	if err := b.Save(t.Context(), s); err != nil {
		t.Fatalf("save serial %d: %v", s.Serial, err)
	}
}

// mustLoad loads and fails the test on error.
func mustLoad(t *testing.T, b state.Backend) *state.State {
	t.Helper()
	s, err := b.Load(t.Context())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

// assertStored fails unless the stored state encodes as want does.
func assertStored(t *testing.T, b state.Backend, want *state.State) {
	t.Helper()
	got := mustLoad(t, b)
	if !bytes.Equal(encode(t, got), encode(t, want)) {
		t.Fatalf("stored state differs:\n got %s\nwant %s", clip(encode(t, got)), clip(encode(t, want)))
	}
}

func clip(data []byte) string {
	if len(data) > 400 {
		return string(data[:400]) + "…"
	}
	return string(data)
}

func testLoadNothing(t *testing.T, b state.Backend) {
	s, err := b.Load(t.Context())
	if s != nil || err != nil {
		t.Fatalf("Load of an empty store = %v, %v; want nil, nil", s, err)
	}
}

func testRoundTrip(t *testing.T, b state.Backend) {
	first := Sample(1, 3)
	mustSave(t, b, first)
	assertStored(t, b, first)
	second := mustLoad(t, b)
	second.Serial++
	second.Instances["web[1]"].ContainerID = "replaced"
	delete(second.Instances, "web[2]")
	mustSave(t, b, second)
	assertStored(t, b, second)
	if got := mustLoad(t, b); got.Instances["web[0]"].Spec.Env[0] != "DB_PASSWORD=hunter2" {
		t.Errorf("secret env value not kept: %v", got.Instances["web[0]"].Spec.Env)
	}
}

func testSerialCAS(t *testing.T, b state.Backend) {
	mustSave(t, b, Sample(1, 1))
	stored := Sample(2, 2)
	mustSave(t, b, stored)
	tests := []struct {
		name   string
		serial int64
	}{
		{name: "stale writer, same serial", serial: 2},
		{name: "older serial", serial: 1},
		{name: "skipped serial", serial: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stale := Sample(tt.serial, 5)
			err := b.Save(t.Context(), stale)
			var conflict *state.SerialConflictError
			if !errors.As(err, &conflict) {
				t.Fatalf("Save of serial %d over 2 = %v; want *SerialConflictError", tt.serial, err)
			}
			if conflict.Stored != 2 || conflict.Attempted != tt.serial {
				t.Errorf("conflict = %+v; want Stored 2, Attempted %d", conflict, tt.serial)
			}
			assertStored(t, b, stored)
		})
	}
	err := b.Save(t.Context(), Sample(2, 9))
	if err == nil || !strings.Contains(err.Error(), "serial 2 stored, 1 expected") {
		t.Errorf("conflict message = %v; want it to name both serials", err)
	}
}

func testFirstSave(t *testing.T, b state.Backend) {
	// Nothing stored: any serial ≥ 1 is written (a migrated state keeps
	// its serial); then a second "first" writer conflicts.
	migrated := Sample(41, 2)
	mustSave(t, b, migrated)
	assertStored(t, b, migrated)
	err := b.Save(t.Context(), Sample(1, 1))
	var conflict *state.SerialConflictError
	if !errors.As(err, &conflict) || conflict.Stored != 41 {
		t.Fatalf("second first save = %v; want *SerialConflictError with Stored 41", err)
	}
	assertStored(t, b, migrated)
}

func testInvalid(t *testing.T, b state.Backend) {
	badLineage := Sample(1, 1)
	badLineage.Lineage = "not-a-uuid"
	noHost := Sample(1, 1)
	noHost.Instances["web[0]"].Host = ""
	newer := Sample(1, 1)
	newer.FormatVersion = state.FormatVersion + 1
	tests := []struct {
		name string
		s    *state.State
	}{
		{name: "serial 0", s: Sample(0, 1)},
		{name: "nil", s: nil},
		{name: "lineage not a UUID", s: badLineage},
		{name: "instance without host", s: noHost},
		{name: "newer format", s: newer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Save(t.Context(), tt.s); err == nil {
				t.Fatal("Save accepted a state that cannot be read back")
			}
			if got := b.(Raw).GetRaw(t); got != nil {
				t.Fatalf("an invalid state was stored: %s", clip(got))
			}
		})
	}
}

func testLineage(t *testing.T, b state.Backend) {
	stored := Sample(1, 1)
	mustSave(t, b, stored)
	other := Sample(2, 1)
	other.Lineage = otherLineage
	err := b.Save(t.Context(), other)
	var lerr *state.LineageError
	if !errors.As(err, &lerr) || lerr.Stored != Lineage || lerr.Attempted != otherLineage {
		t.Fatalf("Save of another lineage = %v; want *LineageError", err)
	}
	assertStored(t, b, stored)
}

func testNewerFormat(t *testing.T, b state.Backend) {
	raw := b.(Raw)
	planted := []byte(fmt.Sprintf(`{"format_version": %d, "lineage": %q, "serial": 3, "future": {"x": 1}}`, state.FormatVersion+1, Lineage))
	raw.PutRaw(t, planted)
	if _, err := b.Load(t.Context()); !errors.Is(err, state.ErrNewerFormat) {
		t.Errorf("Load of a newer format = %v; want ErrNewerFormat", err)
	}
	if err := b.Save(t.Context(), Sample(4, 1)); !errors.Is(err, state.ErrNewerFormat) {
		t.Errorf("Save over a newer format = %v; want ErrNewerFormat", err)
	}
	if got := raw.GetRaw(t); !bytes.Equal(got, planted) {
		t.Errorf("the newer state was touched:\n got %s\nwant %s", got, planted)
	}
}

// wantLocked fails unless err is a *LockedError naming holder.
func wantLocked(t *testing.T, err error, holder state.LockInfo) {
	t.Helper()
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("Lock while held = %v; want *LockedError", err)
	}
	h := locked.Holder
	if h.ID != holder.ID || h.Operation != holder.Operation || h.Who != holder.Who || h.PID != holder.PID ||
		!h.Created.Equal(holder.Created) || h.Version != holder.Version || h.Path == "" {
		t.Errorf("holder = %+v; want %+v with the path", h, holder)
	}
	if !containsAll(err.Error(), holder.ID, holder.Operation, holder.Who, fmt.Sprint(holder.PID), "force-unlock") {
		t.Errorf("message %q does not name the holder (ID, operation, who, PID) and force-unlock", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockedError does not unwrap to the deadline: %v", err)
	}
}

// lockWithin locks with a deadline of d.
func lockWithin(t *testing.T, b state.Backend, info state.LockInfo, d time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	return b.Lock(ctx, info)
}

package etcdstate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	"github.com/dockplan/dockplan/state/statetest"
)

// rawBackend is the etcd backend with the raw access the conformance
// suite needs.
type rawBackend struct{ *Backend }

// PutRaw stores data as the state the way this dockplan lays it out
// (manifest and chunks), with no check at all: its header is whatever
// data's JSON says, zero when it says nothing.
func (r rawBackend) PutRaw(t *testing.T, data []byte) {
	t.Helper()
	var h state.Header
	_ = json.Unmarshal(data, &h)
	w, err := r.newWrite(h, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.upload(t.Context(), "put raw", w); err != nil {
		t.Fatal(err)
	}
	g, last := w.manifest.Generation, len(w.chunks)-1
	_, err = r.client.Txn(t.Context()).Then(
		clientv3.OpPut(r.chunkKey(g, last), string(w.chunks[last])),
		clientv3.OpPut(r.stateKey(), string(w.value)),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
}

// GetRaw returns the stored state's bytes, nil when nothing is stored.
func (r rawBackend) GetRaw(t *testing.T) []byte {
	t.Helper()
	st, err := r.read(t.Context(), "get raw")
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		return nil
	}
	return st.data
}

// newBackend returns a backend on c under a fresh prefix, closed when the
// test ends.
func newBackend(t testing.TB, c *etcdtest.Cluster, opts Options) *Backend {
	t.Helper()
	opts.Endpoints = c.Endpoints()
	if opts.Prefix == "" {
		opts.Prefix = freshPrefix()
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// freshPrefix returns a key prefix no other test uses.
func freshPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("dockplan-test/%x", b)
}

func TestEtcdConformance(t *testing.T) {
	c := etcdtest.Start(t)
	statetest.Run(t, func(t *testing.T) state.Backend {
		return rawBackend{newBackend(t, c, Options{})}
	})
}

// keysUnder returns the keys under prefix, for checks on the layout.
func keysUnder(t *testing.T, b *Backend, prefix string) []string {
	t.Helper()
	resp, err := b.client.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

// bulky returns a valid state of n instances at serial whose encoding
// compresses badly: every instance carries size random bytes (as hex) in
// an environment value.
func bulky(t testing.TB, serial int64, n, size int) *state.State {
	t.Helper()
	s := statetest.Sample(serial, n)
	noise := make([]byte, size)
	for _, inst := range s.Instances {
		_, _ = rand.Read(noise)
		inst.Spec.Env = append(inst.Spec.Env, fmt.Sprintf("NOISE=%x", noise))
	}
	return s
}

// A state whose compressed size is far over etcd's 1.5 MiB request limit
// is stored in chunks, reads back exactly, and a later smaller save leaves
// only its own chunks.
func TestLargerThanTheValueLimit(t *testing.T) {
	c := etcdtest.Start(t)
	b := newBackend(t, c, Options{})
	raw := rawBackend{b}
	big := bulky(t, 1, 3000, 700) // about 4 MiB compressed
	want, err := big.Encode()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := b.Save(t.Context(), big); err != nil {
		t.Fatalf("save: %v", err)
	}
	saveTook := time.Since(start)
	start = time.Now()
	st, err := b.read(t.Context(), "check")
	readTook := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	compressed := 0
	for _, chunk := range keysUnder(t, b, b.chunksPrefix()) {
		resp, err := b.client.Get(t.Context(), chunk)
		if err != nil {
			t.Fatal(err)
		}
		compressed += len(resp.Kvs[0].Value)
	}
	if compressed <= 3<<19 || st.manifest.Chunks < 2 {
		t.Fatalf("%d bytes compressed in %d chunks; the test needs over 1.5 MiB, cut into chunks of at most 1 MiB", compressed, st.manifest.Chunks)
	}
	t.Logf("%d bytes encoded, %d compressed, in %d chunks; save %s, read %s", len(want), compressed, st.manifest.Chunks,
		saveTook.Round(time.Millisecond), readTook.Round(time.Millisecond))
	if got := raw.GetRaw(t); string(got) != string(want) {
		t.Fatal("the chunked state did not read back byte for byte")
	}
	small := statetest.Sample(2, 3)
	if err := b.Save(t.Context(), small); err != nil {
		t.Fatalf("save over the large state: %v", err)
	}
	if got, err := b.Load(t.Context()); err != nil || got.Serial != 2 || len(got.Instances) != 3 {
		t.Fatalf("load after the small save = %v, %v", got, err)
	}
	chunks := keysUnder(t, b, b.chunksPrefix())
	if len(chunks) != 1 {
		t.Errorf("chunk keys after a one-chunk save: %v; want only its own", chunks)
	}
}

// Readers loading while a writer switches between a chunked state and a
// small one see one or the other, never a mix.
func TestReadersNeverSeeAMix(t *testing.T) {
	c := etcdtest.Start(t)
	b := newBackend(t, c, Options{})
	b.chunkSize = 64 << 10 // many chunks without megabytes of traffic
	reader := newBackend(t, c, Options{Prefix: b.prefix})
	if err := b.Save(t.Context(), bulky(t, 1, 400, 300)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan error, 1)
	loads := 0
	go func() {
		defer close(errs)
		for ; ; loads++ {
			select {
			case <-done:
				return
			default:
			}
			s, err := reader.Load(t.Context())
			if err == nil && s != nil && s.Serial%2 == 1 && len(s.Instances) != 400 {
				err = fmt.Errorf("serial %d has %d instances; want 400", s.Serial, len(s.Instances))
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for serial := int64(2); serial <= 12; serial++ {
		next := statetest.Sample(serial, 2)
		if serial%2 == 1 {
			next = bulky(t, serial, 400, 300)
		}
		if err := b.Save(t.Context(), next); err != nil {
			close(done)
			t.Fatalf("save serial %d: %v", serial, err)
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatalf("a reader saw a damaged or mixed state: %v", err)
	}
	t.Logf("%d loads during 11 saves", loads)
}

// A save whose chunks are uploaded but whose manifest loses the race
// leaves the stored state alone, and its chunks are removed.
func TestLostRaceLeavesNoChunks(t *testing.T) {
	c := etcdtest.Start(t)
	a := newBackend(t, c, Options{})
	a.chunkSize = 32 << 10
	other := newBackend(t, c, Options{Prefix: a.prefix})
	if err := a.Save(t.Context(), statetest.Sample(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := other.Save(t.Context(), statetest.Sample(2, 1)); err != nil {
		t.Fatal(err)
	}
	// a still remembers serial 1: its guess is stale, and the large save
	// must be refused after its compare.
	err := a.Save(t.Context(), bulky(t, 2, 300, 300))
	var conflict *state.SerialConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("save over a newer serial = %v; want *SerialConflictError", err)
	}
	if chunks := keysUnder(t, a, a.chunksPrefix()); len(chunks) != 1 {
		t.Errorf("chunk keys after the refused save: %v; want only the stored state's", chunks)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		env     map[string]string
		wantErr string
	}{
		{name: "no prefix", opts: Options{Endpoints: []string{"http://127.0.0.1:1"}}, wantErr: "no key prefix"},
		{name: "no endpoints", opts: Options{Prefix: "p"}, wantErr: "no endpoints"},
		{name: "user without password", opts: Options{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "p"},
			env: map[string]string{UsernameEnv: "alice"}, wantErr: "only one of " + UsernameEnv + " and " + PasswordEnv},
		{name: "cert without key", opts: Options{Endpoints: []string{"https://127.0.0.1:1"}, Prefix: "p", CertFile: "c.pem"},
			wantErr: "needs both cert_file and key_file"},
		{name: "missing CA file", opts: Options{Endpoints: []string{"https://127.0.0.1:1"}, Prefix: "p", CAFile: "/nonexistent/ca.pem"},
			wantErr: "cannot read the CA file"},
		{name: "fine", opts: Options{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "dockplan/shop/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(UsernameEnv, "")
			t.Setenv(PasswordEnv, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			b, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if b.Where() != "etcd:dockplan/shop" || b.stateKey() != "dockplan/shop/state" || b.ttl != DefaultLockTTL || b.timeout != DefaultTimeout {
					t.Errorf("where %q, state key %q, TTL %s, timeout %s", b.Where(), b.stateKey(), b.ttl, b.timeout)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// An endpoint where nothing listens fails within the timeout with the
// store's own message, not a bare context deadline.
func TestNothingListening(t *testing.T) {
	b, err := New(Options{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: freshPrefix(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Load(t.Context())
	wantUnavailable(t, err, "http://127.0.0.1:1")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = b.Lock(ctx, state.NewLockInfo("apply"))
	wantUnavailable(t, err, "http://127.0.0.1:1")
}

// wantUnavailable fails unless err is an *UnavailableError whose message
// says what happened and names endpoint.
func wantUnavailable(t *testing.T, err error, endpoint string) *UnavailableError {
	t.Helper()
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("error = %v; want *UnavailableError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "lost quorum or did not answer within") || !strings.Contains(msg, endpoint) {
		t.Errorf("message %q does not say the store lost quorum or name %s", msg, endpoint)
	}
	if strings.HasPrefix(msg, "context deadline exceeded") {
		t.Errorf("message is a bare context deadline: %q", msg)
	}
	return unavailable
}

// A save by a value that does not hold the lock waits for another holder:
// it fails naming the holder when its context ends first, and goes through
// once the holder unlocks.
func TestSaveWaitsForTheLock(t *testing.T) {
	c := etcdtest.Start(t)
	holder := newBackend(t, c, Options{})
	saver := newBackend(t, c, Options{Prefix: holder.prefix})
	info := state.NewLockInfo("apply")
	id, err := holder.Lock(t.Context(), info)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err = saver.Save(ctx, statetest.Sample(1, 1))
	cancel()
	var locked *state.LockedError
	if !errors.As(err, &locked) || locked.Holder.ID != id || locked.Holder.PID != info.PID {
		t.Fatalf("save while another holds the lock = %v; want *LockedError naming %s", err, id)
	}
	if got := (rawBackend{saver}).GetRaw(t); got != nil {
		t.Fatalf("a save waiting for the lock wrote %d bytes", len(got))
	}
	saved := make(chan error, 1)
	go func() { saved <- saver.Save(t.Context(), statetest.Sample(1, 1)) }()
	time.Sleep(100 * time.Millisecond) // let it find the lock held (the result is the same if not)
	if err := holder.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := <-saved; err != nil {
		t.Fatalf("save after the holder unlocked: %v", err)
	}
}

// With credentials set, New logs in; when nothing answers it fails with
// the store's own message.
func TestLoginWithNothingListening(t *testing.T) {
	t.Setenv(UsernameEnv, "dockplan")
	t.Setenv(PasswordEnv, "s3cret")
	_, err := New(Options{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: freshPrefix(), Timeout: 300 * time.Millisecond})
	wantUnavailable(t, err, "http://127.0.0.1:1 (connection refused)")
}

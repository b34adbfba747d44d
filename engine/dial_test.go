package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// silentListener accepts TCP connections on loopback and never answers,
// like a partitioned host whose SYNs still succeed. It returns the address.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // hold it open, say nothing
		}
	}()
	t.Cleanup(func() {
		l.Close()
		close(done)
	})
	return l.Addr().String()
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// stubEngine is an HTTP server that answers like a Docker engine where the
// tests need it to (ping, errors) and goes silent where they need that.
func stubEngine(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	apiErr := func(status int, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, `{"message":"`+msg+`"}`)
		}
	}
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/v1.41/info", hang)
	mux.HandleFunc("/v1.41/events", hang)
	mux.HandleFunc("/v1.41/containers/missing/json", apiErr(http.StatusNotFound, "No such container: missing"))
	mux.HandleFunc("/v1.41/containers/create", apiErr(http.StatusConflict, `Conflict. The container name /taken is already in use`))
	mux.HandleFunc("/v1.41/images/get", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		io.WriteString(w, "some tar bytes")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return "tcp://" + strings.TrimPrefix(srv.URL, "http://")
}

func TestDialSilentHostFailsWithinTimeout(t *testing.T) {
	addr := silentListener(t)
	// The parent context is much longer than the endpoint timeout: the
	// error must come from the endpoint timeout, which the text says.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := Dial(ctx, Endpoint{HostName: "silent", Address: "tcp://" + addr, Timeout: 300 * time.Millisecond})
	wantErrText(t, err, `host "silent"`, "no answer from tcp://"+addr+" within 300ms")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
	}
}

func TestDialRefusedPort(t *testing.T) {
	addr := closedPort(t)
	_, err := Dial(t.Context(), Endpoint{HostName: "down", Address: "tcp://" + addr, Timeout: 2 * time.Second})
	wantErrText(t, err, `host "down"`, addr)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
	}
}

func TestDialSSHNamesRealHost(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client on PATH")
	}
	_, port, _ := net.SplitHostPort(closedPort(t))
	address := "ssh://nobody@127.0.0.1:" + port
	_, err := Dial(t.Context(), Endpoint{HostName: "viassh", Address: address, Timeout: 5 * time.Second})
	wantErrText(t, err, `host "viassh"`)
	if strings.Contains(err.Error(), sshPlaceholderHost) {
		t.Errorf("error names connhelper's placeholder host: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error does not name the real host: %v", err)
	}
}

func TestDialSilentSSHHostFailsWithinTimeout(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client on PATH")
	}
	_, port, _ := net.SplitHostPort(silentListener(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := Dial(ctx, Endpoint{HostName: "silentssh", Address: "ssh://nobody@127.0.0.1:" + port, Timeout: time.Second})
	wantErrText(t, err, `host "silentssh"`, "within 1s")
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), sshPlaceholderHost) {
		t.Errorf("got %v, want ErrUnreachable naming the real host", err)
	}
}

// dialStub connects to a stub engine.
func dialStub(t *testing.T) Engine {
	t.Helper()
	eng, err := Dial(t.Context(), Endpoint{HostName: "stub", Address: stubEngine(t), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func TestCallsHaveDeadlines(t *testing.T) {
	eng := dialStub(t)
	_, err := eng.Info(t.Context())
	wantErrText(t, err, `host "stub": info`, "within 300ms")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
	}
}

func TestErrorKindsFromEngine(t *testing.T) {
	eng := dialStub(t)
	tests := []struct {
		name string
		call func() error
		kind error
		text []string
	}{
		{"not found", func() error { _, err := eng.InspectContainer(t.Context(), "missing"); return err },
			ErrNotFound, []string{`host "stub": inspect container "missing"`, "No such container"}},
		{"conflict", func() error {
			_, err := eng.CreateContainer(t.Context(), ContainerSpec{Name: "taken", Image: "x"})
			return err
		}, ErrConflict, []string{`host "stub": create container "taken"`, "already in use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantErrText(t, err, tt.text...)
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false for %v", tt.kind, err)
			}
		})
	}
}

func TestImageSaveStallIsAnError(t *testing.T) {
	eng := dialStub(t)
	rc, err := eng.ImageSave(t.Context(), []string{"img:1"})
	if err != nil {
		t.Fatalf("ImageSave: %v", err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	wantErrText(t, err, `host "stub": save image "img:1"`, "no data from")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
	}
}

func TestEventsStallIsAnError(t *testing.T) {
	eng := dialStub(t)
	events, errs := eng.Events(t.Context(), EventFilter{Labels: map[string]string{"dockplan.project": "x"}})
	for range events {
		t.Error("got an event from a silent engine")
	}
	err := <-errs
	wantErrText(t, err, `host "stub": stream events`)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
	}
}

func TestCancelledCallerIsNotUnreachable(t *testing.T) {
	eng := dialStub(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := eng.Info(ctx)
	if err == nil || errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: got %v, want context.Canceled and not ErrUnreachable", err)
	}
}

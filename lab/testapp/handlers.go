package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxHold bounds one allocation request, so a typo cannot eat the machine.
const maxHold = 8 << 30

// app is the server's state.
type app struct {
	port    int
	started time.Time
	sick    atomic.Bool
	crash   chan int

	mu       sync.Mutex
	held     [][]byte
	heldSize int64
}

func newApp(port int) *app {
	return &app{port: port, started: time.Now(), crash: make(chan int, 1)}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", a.handleRoot)
	mux.HandleFunc("/healthz", a.handleHealthz)
	mux.HandleFunc("/sick", func(w http.ResponseWriter, _ *http.Request) {
		a.sick.Store(true)
		writeJSON(w, http.StatusOK, map[string]bool{"healthy": false})
	})
	mux.HandleFunc("/well", func(w http.ResponseWriter, _ *http.Request) {
		a.sick.Store(false)
		writeJSON(w, http.StatusOK, map[string]bool{"healthy": true})
	})
	mux.HandleFunc("/env", handleEnv)
	mux.HandleFunc("/dial", handleDial)
	mux.HandleFunc("/crash", a.handleCrash)
	mux.HandleFunc("/hold", a.handleHold)
	return mux
}

// hold allocates n bytes and touches every page so they count as resident.
func (a *app) hold(n int64) error {
	if n <= 0 {
		return nil
	}
	if n > maxHold {
		return fmt.Errorf("hold %d bytes: more than the limit of %d", n, int64(maxHold))
	}
	buf := make([]byte, n)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	a.mu.Lock()
	a.held = append(a.held, buf)
	a.heldSize += n
	a.mu.Unlock()
	return nil
}

func (a *app) heldBytes() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.heldSize
}

func (a *app) handleRoot(w http.ResponseWriter, _ *http.Request) {
	hostname, _ := os.Hostname()
	writeJSON(w, http.StatusOK, map[string]any{
		"hostname":   hostname,
		"pid":        os.Getpid(),
		"port":       a.port,
		"uptime_s":   time.Since(a.started).Seconds(),
		"held_bytes": a.heldBytes(),
		"healthy":    !a.sick.Load(),
	})
}

func (a *app) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	if a.sick.Load() {
		http.Error(w, "sick", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func handleEnv(w http.ResponseWriter, _ *http.Request) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	writeJSON(w, http.StatusOK, env)
}

// dialResult is /dial's answer.
type dialResult struct {
	Addr      string  `json:"addr"`
	Mode      string  `json:"mode"`
	OK        bool    `json:"ok"`
	Status    int     `json:"status,omitempty"`
	Body      string  `json:"body,omitempty"`
	Error     string  `json:"error,omitempty"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// handleDial connects to ?addr: an HTTP GET of /healthz (mode=http, the
// default) or a bare TCP connection (mode=tcp).
func handleDial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	res := dialResult{Addr: q.Get("addr"), Mode: q.Get("mode")}
	if res.Mode == "" {
		res.Mode = "http"
	}
	timeout, err := parseDuration(q.Get("timeout"))
	if timeout <= 0 || err != nil {
		timeout = 3 * time.Second
	}
	if _, _, err := net.SplitHostPort(res.Addr); err != nil || (res.Mode != "http" && res.Mode != "tcp") {
		res.Error = "want ?addr=HOST:PORT and mode=http or mode=tcp"
		writeJSON(w, http.StatusBadRequest, res)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	start := time.Now()
	if res.Mode == "tcp" {
		err = dialTCP(ctx, res.Addr)
	} else {
		res.Status, res.Body, err = getHealthz(ctx, res.Addr)
	}
	res.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	res.OK = err == nil
	status := http.StatusOK
	if err != nil {
		res.Error = err.Error()
		status = http.StatusBadGateway
	}
	writeJSON(w, status, res)
}

func dialTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// getHealthz GETs http://addr/healthz; a status other than 200 is an error.
func getHealthz(ctx context.Context, addr string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, text, errors.New("status " + resp.Status)
	}
	return resp.StatusCode, text, nil
}

func (a *app) handleCrash(w http.ResponseWriter, r *http.Request) {
	code := 2
	if s := r.URL.Query().Get("code"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 255 {
			http.Error(w, "code must be 0..255", http.StatusBadRequest)
			return
		}
		code = n
	}
	writeJSON(w, http.StatusOK, map[string]int{"exit_code": code})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	select {
	case a.crash <- code:
	default: // a crash is already on its way
	}
}

func (a *app) handleHold(w http.ResponseWriter, r *http.Request) {
	n, err := parseSize(r.URL.Query().Get("bytes"))
	if err == nil {
		err = a.hold(n)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"held_bytes": a.heldBytes()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client may have gone
}

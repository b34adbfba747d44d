package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "", want: 0},
		{in: "4096", want: 4096},
		{in: "64MiB", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "1G", want: 1 << 30},
		{in: "1.5KiB", want: 1536},
		{in: "2MB", want: 2e6},
		{in: "lots", wantErr: true},
		{in: "-1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: config{port: 8080}},
		{name: "env", env: map[string]string{"PORT": "9000", "TESTAPP_EXIT_AFTER": "5", "TESTAPP_EXIT_CODE": "3", "TESTAPP_HOLD": "1KiB"},
			want: config{port: 9000, exitAfter: 5 * time.Second, exitCode: 3, holdBytes: 1024}},
		{name: "flags win", args: []string{"-port", "7000", "-exit-after", "2s", "-hold", "2K", "-healthcheck"}, env: map[string]string{"PORT": "9000"},
			want: config{port: 7000, exitAfter: 2 * time.Second, holdBytes: 2048, healthcheck: true}},
		{name: "bad env", env: map[string]string{"TESTAPP_EXIT_CODE": "x"}, wantErr: "TESTAPP_EXIT_CODE"},
		{name: "bad port", args: []string{"-port", "70000"}, wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHandlers(t *testing.T) {
	a := newApp(8080)
	srv := httptest.NewServer(a.routes())
	defer srv.Close()
	t.Setenv("TESTAPP_PROBE", "yes")

	if code, body := get(t, srv, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	get(t, srv, "/sick")
	if code, _ := get(t, srv, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after /sick = %d, want 503", code)
	}
	get(t, srv, "/well")
	if code, _ := get(t, srv, "/healthz"); code != 200 {
		t.Errorf("/healthz after /well = %d, want 200", code)
	}
	var env map[string]string
	_, body := get(t, srv, "/env")
	if err := json.Unmarshal([]byte(body), &env); err != nil || env["TESTAPP_PROBE"] != "yes" {
		t.Errorf("/env = %s (%v)", body, err)
	}
	if code, body := get(t, srv, "/hold?bytes=8KiB"); code != 200 || !strings.Contains(body, "8192") {
		t.Errorf("/hold = %d %s", code, body)
	}
	if code, _ := get(t, srv, "/crash?code=7"); code != 200 {
		t.Errorf("/crash = %d", code)
	}
	select {
	case code := <-a.crash:
		if code != 7 {
			t.Errorf("crash code = %d, want 7", code)
		}
	case <-time.After(5 * time.Second):
		t.Error("/crash did not ask to exit")
	}
	if code, _ := get(t, srv, "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", code)
	}
}

func TestDial(t *testing.T) {
	target := httptest.NewServer(newApp(0).routes())
	defer target.Close()
	srv := httptest.NewServer(newApp(0).routes())
	defer srv.Close()
	addr := strings.TrimPrefix(target.URL, "http://")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name   string
		query  string
		status int
		ok     bool
	}{
		{name: "http", query: "addr=" + addr, status: 200, ok: true},
		{name: "tcp", query: "mode=tcp&addr=" + addr, status: 200, ok: true},
		{name: "refused", query: "timeout=1s&addr=" + closedAddr, status: http.StatusBadGateway},
		{name: "no addr", query: "", status: http.StatusBadRequest},
		{name: "bad mode", query: "mode=udp&addr=" + addr, status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv, "/dial?"+tt.query)
			var res dialResult
			if err := json.Unmarshal([]byte(body), &res); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if code != tt.status || res.OK != tt.ok {
				t.Fatalf("/dial?%s = %d %+v; want %d ok=%v", tt.query, code, res, tt.status, tt.ok)
			}
		})
	}
}

func TestHealthcheckMode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(0)
	srv := &http.Server{Handler: a.routes()}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if code := healthcheck(port); code != 0 {
		t.Errorf("healthcheck of a healthy app = %d, want 0", code)
	}
	a.sick.Store(true)
	if code := healthcheck(port); code != 1 {
		t.Errorf("healthcheck of a sick app = %d, want 1", code)
	}
}

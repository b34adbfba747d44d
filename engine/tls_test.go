package engine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsStub serves a Docker-like /_ping over TLS that demands a client
// certificate signed by ca, and returns its tcp:// address.
func tlsStub(t *testing.T, ca *testCA) string {
	t.Helper()
	certFile, keyFile := ca.issue(t, t.TempDir(), "server", true)
	return tlsStubWith(t, ca, certFile, keyFile)
}

// tlsStubWith is tlsStub serving the given server certificate.
func tlsStubWith(t *testing.T, ca *testCA, certFile, keyFile string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, "OK")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return "tcp://" + strings.TrimPrefix(srv.URL, "https://")
}

func TestTLSVerification(t *testing.T) {
	ca, otherCA := newTestCA(t), newTestCA(t)
	addr := tlsStub(t, ca)
	dir := t.TempDir()
	caFile, otherCAFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other-ca.pem")
	writePEM(t, caFile, "CERTIFICATE", ca.der)
	writePEM(t, otherCAFile, "CERTIFICATE", otherCA.der)
	cert, key := ca.issue(t, dir, "client", false)
	strangerCert, strangerKey := otherCA.issue(t, dir, "stranger", false)
	tests := []struct {
		name    string
		files   TLSFiles
		wantErr string
	}{
		{"right CA and client certificate", TLSFiles{CAFile: caFile, CertFile: cert, KeyFile: key}, ""},
		{"wrong CA", TLSFiles{CAFile: otherCAFile, CertFile: cert, KeyFile: key}, "certificate signed by unknown authority"},
		{"client certificate from another CA", TLSFiles{CAFile: caFile, CertFile: strangerCert, KeyFile: strangerKey}, "certificate"},
		{"no client certificate", TLSFiles{CAFile: caFile}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, err := Dial(t.Context(), Endpoint{HostName: "secure", Address: addr, TLS: &tt.files, Timeout: 5 * time.Second})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				eng.Close()
				return
			}
			wantErrText(t, err, `host "secure"`, tt.wantErr)
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
			}
		})
	}
}

// TestTLSRefusesBadServerCertificates: verification stays on for tcp://
// with a tls block. An engine whose certificate has expired, is not valid
// yet, or does not name the address dialled is refused, even when the CA
// in the tls block signed it.
func TestTLSRefusesBadServerCertificates(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", ca.der)
	cert, key := ca.issue(t, dir, "client", false)
	files := TLSFiles{CAFile: caFile, CertFile: cert, KeyFile: key}
	now := time.Now()
	tests := []struct {
		name     string
		serve    func() (certFile, keyFile string)
		dialHost string // "" dials 127.0.0.1
		wantErr  string
		hint     string
	}{
		{name: "expired", wantErr: "certificate has expired or is not yet valid", hint: "check the engine certificate's dates",
			serve: func() (string, string) {
				return ca.issueFor(t, t.TempDir(), "server", true, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
			}},
		{name: "not valid yet", wantErr: "certificate has expired or is not yet valid",
			serve: func() (string, string) {
				return ca.issueFor(t, t.TempDir(), "server", true, now.Add(24*time.Hour), now.Add(48*time.Hour))
			}},
		{name: "names another address", dialHost: "localhost", wantErr: "not valid for any names", hint: "the engine's certificate does not name the address used",
			serve: func() (string, string) { return ca.issue(t, t.TempDir(), "server", true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := tt.serve()
			addr := tlsStubWith(t, ca, certFile, keyFile)
			if tt.dialHost != "" {
				addr = strings.Replace(addr, "127.0.0.1", tt.dialHost, 1)
			}
			_, err := Dial(t.Context(), Endpoint{HostName: "secure", Address: addr, TLS: &files, Timeout: 5 * time.Second})
			wantErrText(t, err, `host "secure"`, tt.wantErr, tt.hint)
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
			}
		})
	}
}

package hclspec_test

import (
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
)

// TestPlainTCPNeedsInsecure: plain tcp:// goes to loopback freely and
// anywhere else only with insecure = true, the way the lab's host blocks
// reach 10.213.0.11-13; TLS needs no insecure; a docker context may say
// insecure = true (the engine needs it for a context that skips TLS
// verification) but takes no tls block.
func TestPlainTCPNeedsInsecure(t *testing.T) {
	tls := "\n  tls {\n    ca_file   = \"ca.pem\"\n    cert_file = \"cert.pem\"\n    key_file  = \"key.pem\"\n  }"
	tests := []struct {
		name     string
		body     string
		insecure bool
		wantErr  string
	}{
		{name: "loopback", body: `address = "tcp://127.0.0.1:2375"`},
		{name: "localhost", body: `address = "tcp://localhost:2375"`},
		{name: "ipv6 loopback", body: `address = "tcp://[::1]:2375"`},
		{name: "lab address refused", body: `address = "tcp://10.213.0.11:2375"`, wantErr: "set insecure = true if this network is trusted"},
		{name: "a name is not loopback", body: `address = "tcp://docker.internal:2375"`, wantErr: "plain tcp:// to docker.internal"},
		{name: "lab address with insecure", body: "address = \"tcp://10.213.0.11:2375\"\n  insecure = true", insecure: true},
		{name: "tls", body: `address = "tcp://10.0.0.12:2376"` + tls},
		{name: "insecure on ssh", body: "address = \"ssh://root@10.0.0.3\"\n  insecure = true", wantErr: "insecure = true applies only to tcp://"},
		{name: "context with insecure", body: "context  = \"lab\"\n  insecure = true", insecure: true},
		{name: "context with tls", body: `context = "lab"` + tls, wantErr: "remove the tls block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "project = \"p\"\nhost \"h\" {\n  " + tt.body + "\n}\n"
			cfg, _, diags := hclspec.LoadSources(".", map[string][]byte{"main.dockplan.hcl": []byte(src)}, hclspec.LoadOptions{})
			if tt.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantErr) {
					t.Fatalf("diags = %v, want %q", diags, tt.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if got := cfg.Host("h").Insecure; got != tt.insecure {
				t.Errorf("Insecure = %v, want %v", got, tt.insecure)
			}
		})
	}
}

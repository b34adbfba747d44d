package cli

import (
	"net"
	"testing"
)

func TestMetricsListenAddress(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "port only binds loopback", in: ":9464", want: "127.0.0.1:9464"},
		{name: "port zero binds loopback", in: ":0", want: "127.0.0.1:0"},
		{name: "loopback stays", in: "127.0.0.1:9464", want: "127.0.0.1:9464"},
		{name: "every interface when asked", in: "0.0.0.0:9464", want: "0.0.0.0:9464"},
		{name: "ipv6 when asked", in: "[::]:9464", want: "[::]:9464"},
		{name: "a name stays", in: "localhost:9464", want: "localhost:9464"},
		{name: "malformed is left for net.Listen", in: "9464", want: "9464"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricsListenAddress(tt.in); got != tt.want {
				t.Errorf("metricsListenAddress(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestMetricsListenBindsLoopback listens as the daemon does: a port alone
// must not be reachable from other machines.
func TestMetricsListenBindsLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", metricsListenAddress(":0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("listening on %s, want a loopback address", ln.Addr())
	}
}

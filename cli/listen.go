package cli

import "net"

// metricsListenAddress is where `reconcile -daemon -listen ADDR` serves
// /metrics and /healthz. An address without a host part (":9464") binds
// loopback only, where net.Listen alone would bind every interface: the
// metrics name hosts, instances and repairs, and the server has no
// authentication, so serving them to the network must be asked for by
// giving the host ("0.0.0.0:9464", "10.0.0.5:9464").
func metricsListenAddress(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr // net.Listen reports a malformed address itself
	}
	return net.JoinHostPort("127.0.0.1", port)
}

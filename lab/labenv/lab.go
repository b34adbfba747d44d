package labenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkTimeout bounds Require's ping of each host's unix socket.
const checkTimeout = 3 * time.Second

// Require returns the running lab, or ends the test: with t.Fatal when the
// environment variable CI is true (a missing lab must fail CI), with t.Skip
// otherwise. Either way the message says how to bring the lab up.
//
// The test shares the lab with other tests, in this and other processes,
// until it ends; a test that partitions or kills hosts uses RequireExclusive.
func Require(t testing.TB) *Lab {
	t.Helper()
	return require(t, 1, false)
}

// RequireHosts is Require for a test that needs at least n lab hosts.
func RequireHosts(t testing.TB, n int) *Lab {
	t.Helper()
	return require(t, n, false)
}

// RequireExclusive is RequireHosts for a test that injects faults
// (Partition, Kill): it waits until no other test in any process is using
// the lab, and keeps them waiting until it ends, so that its faults break
// no one else. Call it at the top of a test, not inside a subtest of a test
// that called Require (that would wait for itself until lockTimeout).
func RequireExclusive(t testing.TB, n int) *Lab {
	t.Helper()
	return require(t, n, true)
}

func require(t testing.TB, n int, exclusive bool) *Lab {
	t.Helper()
	lab, err := Load()
	if err == nil {
		var release func()
		release, err = lockTests(exclusive)
		if err != nil {
			t.Fatalf("dockplan lab: %v", err)
		}
		t.Cleanup(release)
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		err = lab.Check(ctx)
		cancel()
	}
	if err == nil && len(lab.Hosts) < n {
		err = fmt.Errorf("the dockplan lab has %d hosts, this test needs %d", len(lab.Hosts), n)
	}
	if err != nil {
		msg := notUpMessage(err, n)
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return lab
}

// notUpMessage says what is wrong and what to run.
func notUpMessage(err error, n int) string {
	up := UpCommand
	if n > 3 {
		up = "go run ./lab up " + strconv.Itoa(n)
	}
	msg := fmt.Sprintf("%v; as root, from the repository root, run `bash lab/install-deps.sh` once, then `%s`", err, up)
	if errors.Is(err, ErrNotUp) && os.Geteuid() != 0 {
		msg += " (the lab needs root)"
	}
	return msg
}

// InCI reports whether the environment variable CI is set to a true value.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Check checks that the lab network exists and pings every host's unix
// socket (never its TCP address). A partitioned host passes (its
// socket still answers); a killed one does not.
func (l *Lab) Check(ctx context.Context) error {
	if len(l.Hosts) == 0 {
		return errors.New("the dockplan lab state lists no hosts")
	}
	// Without the root namespace's link the lab addresses would be routed
	// off the machine: a stale state file must not pass.
	if _, err := os.Stat("/sys/class/net/" + l.RootLink); l.RootLink == "" || err != nil {
		return fmt.Errorf("the dockplan lab network link %q is missing", l.RootLink)
	}
	var failed []string
	for _, h := range l.Hosts {
		if err := h.Ping(ctx, true); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", h.Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("dockplan lab hosts not answering (see `go run ./lab status`): %s", strings.Join(failed, "; "))
	}
	return nil
}

// Client returns a client for the host's TCP endpoint (the one partitions
// affect), or for its unix socket when viaSocket is true.
func (h Host) Client(viaSocket bool) (*Client, error) {
	if viaSocket {
		return NewClient(h.Socket)
	}
	return NewClient(h.TCPAddress)
}

// Ping pings the host's engine over TCP, or over its unix socket when
// viaSocket is true.
func (h Host) Ping(ctx context.Context, viaSocket bool) error {
	c, err := h.Client(viaSocket)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping(ctx)
}

// HostBlockOptions changes what HostBlock renders.
type HostBlockOptions struct {
	// UseSocket renders the unix socket instead of the TCP address.
	UseSocket bool
	// Labels become the block's labels map, in key order.
	Labels map[string]string
	// Extra lines are written inside the block as they are, for example
	// `capacity { cpu = 1 memory = "1GiB" }`.
	Extra []string
}

// HCL returns the host's dockplan `host` block, reached over plain TCP.
func (h Host) HCL() string {
	return h.HostBlock(HostBlockOptions{})
}

// HostBlock returns the host's dockplan `host` block. Plain tcp:// to a
// non-loopback address needs `insecure = true`.
func (h Host) HostBlock(opts HostBlockOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s {\n", hclQuote(h.Name))
	if opts.UseSocket {
		fmt.Fprintf(&b, "  address = %s\n", hclQuote(h.Socket))
	} else {
		fmt.Fprintf(&b, "  address  = %s\n", hclQuote(h.TCPAddress))
		b.WriteString("  insecure = true\n")
	}
	if len(opts.Labels) > 0 {
		keys := make([]string, 0, len(opts.Labels))
		for k := range opts.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("  labels = {\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "    %s = %s\n", hclQuote(k), hclQuote(opts.Labels[k]))
		}
		b.WriteString("  }\n")
	}
	for _, line := range opts.Extra {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	b.WriteString("}\n")
	return b.String()
}

// HCL returns a `host` block for every lab host, separated by blank lines.
func (l *Lab) HCL() string {
	blocks := make([]string, 0, len(l.Hosts))
	for _, h := range l.Hosts {
		blocks = append(blocks, h.HCL())
	}
	return strings.Join(blocks, "\n")
}

// hclQuote returns s as an HCL string literal, escaping template sequences.
func hclQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

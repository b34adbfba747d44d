package engine

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// droppingListener returns a loopback address whose SYNs go unanswered, as
// a partitioned host's do: a socket listening with a backlog of 0 that
// never accepts, with its accept queue filled. Linux then drops further
// SYNs (tcp_conn_request: accept queue full), so a connect times out.
func droppingListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue until a connect no longer completes.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			t.Fatalf("fill the accept queue: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("this kernel does not drop SYNs to a full accept queue")
	return ""
}

// A host whose SYNs are dropped is reported as not answering within the
// timeout, never as "Is the docker daemon running?", which the Docker
// client substitutes for a dial timeout (dropping the cause).
func TestDialTimeoutSaysNoAnswer(t *testing.T) {
	addr := droppingListener(t)
	// The dial timeout and the call deadline race; before the fix about
	// one dial in seven lost its cause.
	for range 15 {
		_, err := Dial(t.Context(), Endpoint{HostName: "cutoff", Address: "tcp://" + addr, Timeout: 200 * time.Millisecond})
		wantErrText(t, err, `host "cutoff"`, "no answer from tcp://"+addr+" within 200ms")
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("errors.Is(err, ErrUnreachable) = false for %v", err)
		}
	}
}

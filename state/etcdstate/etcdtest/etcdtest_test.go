package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
)

// A member killed and restarted comes back healthy on its data.
func TestKillRestart(t *testing.T) {
	start := time.Now()
	c := etcdtest.Start(t)
	t.Logf("3 members healthy after %v: %v", time.Since(start), c.Endpoints())
	pid := c.PID(1)
	if pid == 0 {
		t.Fatal("member 1 has no PID")
	}
	c.Kill(1)
	if c.PID(1) != 0 {
		t.Fatal("member 1 still has a PID after Kill")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("two of three members: %v", err)
	}
	c.Restart(1)
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if c.PID(1) == 0 || c.PID(1) == pid {
		t.Errorf("PID after restart = %d (before %d)", c.PID(1), pid)
	}
}

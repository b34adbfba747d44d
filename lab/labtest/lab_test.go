package labtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// Every host answers on its own TCP address and reports its own name.
func TestHostsAnswerOnTCPWithDistinctNames(t *testing.T) {
	lab := labenv.Require(t)
	seen := map[string]string{}
	for _, h := range lab.Hosts {
		c, err := h.Client(false)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if err := c.Ping(ctx); err != nil {
			t.Errorf("%s: ping %s: %v", h.Name, h.TCPAddress, err)
		}
		info, err := c.Info(ctx)
		cancel()
		c.Close()
		if err != nil {
			t.Errorf("%s: info: %v", h.Name, err)
			continue
		}
		if info.Name != h.Hostname {
			t.Errorf("%s: docker info Name = %q, want %q", h.Name, info.Name, h.Hostname)
		}
		if other, dup := seen[info.Name]; dup {
			t.Errorf("%s and %s both report Name %q", other, h.Name, info.Name)
		}
		seen[info.Name] = h.Name
		if label := "dockplan-lab.host=" + h.Name; !strings.Contains(strings.Join(info.Labels, ","), label) {
			t.Errorf("%s: engine labels %v lack %s", h.Name, info.Labels, label)
		}
	}
}

// A port published on host 2 is reachable from the root namespace and from
// a container on host 1, as on real machines.
func TestPublishedPortReachableAcrossHosts(t *testing.T) {
	lab := labenv.RequireHosts(t, 2)
	h1, h2 := lab.Hosts[0], lab.Hosts[1]
	_, port2 := runTestapp(t, lab, h2)
	_, port1 := runTestapp(t, lab, h1)
	target := net.JoinHostPort(h2.Address, port2)
	eventually(t, 20*time.Second, "testapp on host2 answers from the root namespace", healthy(target))
	from := net.JoinHostPort(h1.Address, port1)
	eventually(t, 20*time.Second, "testapp on host1 answers", healthy(from))
	eventually(t, 20*time.Second, "a container on host1 reaches host2's published port", dialOK(from, target))
}

// An image pushed to the lab registry can be pulled on another host.
func TestPullFromLabRegistry(t *testing.T) {
	lab := labenv.RequireHosts(t, 3)
	pusher, puller := lab.Hosts[0], lab.Hosts[2]
	repo, _ := labenv.SplitRef(lab.RegistryImage)
	ref := fmt.Sprintf("%s:labtest-%d", repo, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pc, err := pusher.Client(true)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tc, err := puller.Client(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		for _, c := range []*labenv.Client{pc, tc} {
			if err := c.RemoveImage(cctx, ref); err != nil {
				t.Errorf("remove %s: %v", ref, err)
			}
		}
	})
	if err := pc.TagImage(ctx, lab.Image, ref); err != nil {
		t.Fatal(err)
	}
	if err := pc.PushImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := tc.PullImage(ctx, ref); err != nil {
		t.Fatalf("pull on %s: %v", puller.Name, err)
	}
	pulled, err := tc.ImageID(ctx, ref)
	if err != nil || pulled == "" {
		t.Fatalf("%s lacks %s after the pull (%v)", puller.Name, ref, err)
	}
	local, err := tc.ImageID(ctx, lab.Image)
	if err != nil || local != pulled {
		t.Errorf("pulled image %s differs from the loaded %s %s (%v)", pulled, lab.Image, local, err)
	}
}

// A partitioned host's TCP endpoint times out (it does not refuse) while
// its unix socket and the other hosts still answer; heal restores it.
func TestPartitionTimesOutAndHealRestores(t *testing.T) {
	lab := labenv.RequireExclusive(t, 2)
	h1, h2 := lab.Hosts[0], lab.Hosts[1]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := lab.Heal(ctx, h2.Name); err != nil {
			t.Errorf("heal %s: %v", h2.Name, err)
		}
	})
	if err := lab.Partition(t.Context(), h2.Name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	err := h2.Ping(ctx, false)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ping of partitioned %s over TCP = %v, want a timeout", h2.Name, err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := h2.Ping(ctx, true); err != nil {
		t.Errorf("unix socket of partitioned %s: %v", h2.Name, err)
	}
	if err := h1.Ping(ctx, false); err != nil {
		t.Errorf("%s over TCP while %s is partitioned: %v", h1.Name, h2.Name, err)
	}
	if err := lab.Heal(t.Context(), h2.Name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "healed host answers over TCP", func(ctx context.Context) error {
		return h2.Ping(ctx, false)
	})
}

// Killing a host's dockerd leaves its containers running; a power loss
// ends them. After revive, restart policies behave as on a real machine.
func TestKillAndRevive(t *testing.T) {
	lab := labenv.RequireExclusive(t, 3)
	h := lab.Hosts[2]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := lab.Revive(ctx, h.Name); err != nil {
			t.Errorf("revive %s: %v", h.Name, err)
		}
	})
	always, port := runTestapp(t, lab, h, "--restart", "always")
	unless, _ := runTestapp(t, lab, h, "--restart", "unless-stopped")
	addr := net.JoinHostPort(h.Address, port)
	eventually(t, 20*time.Second, "testapp answers", healthy(addr))

	t.Run("dockerd only", func(t *testing.T) {
		if err := lab.Kill(t.Context(), h.Name, false); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := h.Ping(ctx, false); err == nil {
			t.Fatalf("%s still answers after its dockerd was killed", h.Name)
		}
		if err := healthy(addr)(ctx); err != nil {
			t.Errorf("container stopped with its dockerd: %v", err)
		}
		revive(t, lab, h.Name)
		eventually(t, 30*time.Second, "restart=always container back", wantState(h, always, "running"))
		eventually(t, 30*time.Second, "restart=unless-stopped container stays exited", wantState(h, unless, "exited"))
		mustDocker(t, h.Socket, "start", unless)
		// The restart published port 8080 on a new host port.
		addr = net.JoinHostPort(h.Address, hostPort(t, h, always))
		eventually(t, 20*time.Second, "restarted testapp answers", healthy(addr))
	})

	t.Run("power loss", func(t *testing.T) {
		if err := lab.Kill(t.Context(), h.Name, true); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := healthy(addr)(ctx); err == nil {
			t.Fatal("container still answers after a power loss")
		}
		revive(t, lab, h.Name)
		eventually(t, 30*time.Second, "restart=always container back", wantState(h, always, "running"))
		eventually(t, 30*time.Second, "restart=unless-stopped container back", wantState(h, unless, "running"))
		addr = net.JoinHostPort(h.Address, hostPort(t, h, always))
		eventually(t, 20*time.Second, "testapp answers after revive", healthy(addr))
	})
}

func revive(t *testing.T, lab *labenv.Lab, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := lab.Revive(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// EnsureTestImage gives the machine's default engine the test image.
func TestEnsureTestImageOnDefaultEngine(t *testing.T) {
	c, err := labenv.DefaultClient()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		msg := fmt.Sprintf("the default Docker engine does not answer (%v): run `bash lab/install-deps.sh` as root", err)
		if labenv.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := labenv.EnsureTestImage(ctx); err != nil {
		t.Fatal(err)
	}
	if id, err := c.ImageID(ctx, labenv.TestImage); err != nil || id == "" {
		t.Fatalf("default engine lacks %s after EnsureTestImage (%v)", labenv.TestImage, err)
	}
}

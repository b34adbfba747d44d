package cli

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/probe"
)

// dialHosts connects to the hosts want chooses, all at once. A host that
// fails to connect gets no engine (its steps then fail naming it) and is
// passed to warn.
func dialHosts(ctx context.Context, hosts []*hclspec.Host, want func(*hclspec.Host) bool, timeout time.Duration, warn func(*hclspec.Host, error)) map[string]engine.Engine {
	engines := map[string]engine.Engine{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hosts {
		if !want(h) {
			continue
		}
		wg.Go(func() {
			eng, err := engine.Dial(ctx, probe.Endpoint(h, timeout))
			if err != nil {
				warn(h, err)
				return
			}
			mu.Lock()
			engines[h.Name] = eng
			mu.Unlock()
		})
	}
	wg.Wait()
	return engines
}

// reachAddresses maps each probed host to where others reach its ports.
func reachAddresses(snap *probe.Snapshot) map[string]string {
	addrs := map[string]string{}
	for _, hf := range snap.Hosts {
		addrs[hf.Name] = hf.ReachAddress
	}
	return addrs
}

// dialLocal connects to the engine of this machine (DOCKER_HOST in
// environ, else the default socket) when the plan copies images from it
// (image_source = "local"); nil when it does not, or when the engine does
// not answer (passed to warn).
func dialLocal(ctx context.Context, plan *planner.Plan, environ []string, timeout time.Duration, warn func(error)) engine.Engine {
	needed := false
	for _, s := range plan.Steps {
		needed = needed || (s.Action == planner.Pull && s.ImageSource == "local")
	}
	if !needed {
		return nil
	}
	addr, insecure := hclspec.DefaultDockerHost, false
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "DOCKER_HOST="); ok && v != "" {
			addr, insecure = v, true
		}
	}
	eng, err := engine.Dial(ctx, engine.Endpoint{HostName: "this machine", Address: addr, Insecure: insecure, Timeout: timeout})
	if err != nil {
		warn(err)
		return nil
	}
	return eng
}

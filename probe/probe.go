package probe

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
)

// DefaultInspectConcurrency bounds the inspect calls in flight per host.
// Over ssh each concurrent call opens a connection, and sshd's default
// MaxStartups drops some beyond ~10 (see LAB.md), so stay well below it.
const DefaultInspectConcurrency = 6

// Dialer opens an engine for an endpoint; engine.Dial is the real one.
type Dialer func(ctx context.Context, ep engine.Endpoint) (engine.Engine, error)

// Options tune a probe.
type Options struct {
	// Timeout bounds each engine call; a host that does not answer within
	// it is unreachable. Zero means engine.DefaultTimeout.
	Timeout time.Duration
	// InspectConcurrency bounds the inspect calls in flight per host.
	InspectConcurrency int
	// Dial opens engines; nil means engine.Dial.
	Dial Dialer
}

// Endpoint maps a host block to the engine endpoint it names.
func Endpoint(h *hclspec.Host, timeout time.Duration) engine.Endpoint {
	ep := engine.Endpoint{
		HostName: h.Name, Address: h.Address, Context: h.Context,
		Insecure: h.Insecure, Timeout: timeout,
	}
	if h.TLS != nil {
		ep.TLS = &engine.TLSFiles{CAFile: h.TLS.CAFile, CertFile: h.TLS.CertFile, KeyFile: h.TLS.KeyFile}
	}
	return ep
}

// Probe asks every host of cfg in parallel and returns what they said. It
// never fails as a whole: a host that cannot be reached is recorded with
// its error, and the other hosts are still probed.
func Probe(ctx context.Context, cfg *hclspec.Config, opts Options) *Snapshot {
	if opts.Dial == nil {
		opts.Dial = engine.Dial
	}
	if opts.InspectConcurrency <= 0 {
		opts.InspectConcurrency = DefaultInspectConcurrency
	}
	images := configImages(cfg)
	snap := &Snapshot{FormatVersion: FormatVersion, Project: cfg.Project, Hosts: make([]*HostFacts, len(cfg.Hosts))}
	var wg sync.WaitGroup
	for i, h := range cfg.Hosts {
		wg.Go(func() {
			snap.Hosts[i] = probeHost(ctx, h, cfg.Project, images, opts)
		})
	}
	wg.Wait()
	return snap
}

// configImages lists the distinct images of every instance, sorted.
func configImages(cfg *hclspec.Config) []string {
	seen := map[string]bool{}
	for _, inst := range cfg.Instances() {
		seen[inst.Image] = true
	}
	out := make([]string, 0, len(seen))
	for img := range seen {
		out = append(out, img)
	}
	sort.Strings(out)
	return out
}

func probeHost(ctx context.Context, h *hclspec.Host, project string, images []string, opts Options) *HostFacts {
	f := &HostFacts{
		Name: h.Name, Address: h.Address, Labels: h.Labels,
		Reserved: Resources{MilliCPU: h.Reserve.MilliCPU, MemoryBytes: h.Reserve.MemoryBytes},
		Managed:  []ManagedContainer{}, Images: map[string]ImageFacts{},
	}
	if f.Address == "" {
		f.Address = "context " + h.Context
	}
	start := time.Now()
	eng, err := opts.Dial(ctx, Endpoint(h, opts.Timeout))
	f.APICalls++ // the ping that Dial makes
	if err != nil {
		f.Error = err.Error()
		return f
	}
	defer eng.Close()
	c := &counter{Engine: eng}
	info, err := c.Info(ctx)
	f.RoundTrip = time.Since(start)
	if err != nil {
		f.Error = err.Error()
		f.APICalls += int(c.calls.Load())
		return f
	}
	f.Reachable = true
	f.Engine = &EngineFacts{
		Name: info.Name, ServerVersion: info.ServerVersion, APIVersion: info.ClientAPIVersion,
		OS: info.OS, Arch: info.Arch, NCPU: info.NCPU, MemTotal: info.MemTotal, Labels: info.Labels,
	}
	f.Total = Resources{MilliCPU: int64(info.NCPU) * 1000, MemoryBytes: info.MemTotal}
	if cp := h.Capacity; cp != nil {
		if cp.MilliCPU > 0 {
			f.Total.MilliCPU = cp.MilliCPU
		}
		if cp.MemoryBytes > 0 {
			f.Total.MemoryBytes = cp.MemoryBytes
		}
	}
	f.Capacity = f.Total.Sub(f.Reserved)
	f.ReachAddress = h.PublicAddress
	if f.ReachAddress == "" {
		f.ReachAddress = bridgeGateway(ctx, c)
	}
	if err := probeContainers(ctx, c, f, project, opts.InspectConcurrency); err != nil {
		f.Reachable, f.Error = false, err.Error()
	} else if err := probeImages(ctx, c, f, images, opts.InspectConcurrency); err != nil {
		f.Reachable, f.Error = false, err.Error()
	}
	f.Free = f.Capacity.Sub(f.Allocated)
	f.APICalls += int(c.calls.Load())
	return f
}

// bridgeGateway returns the gateway of the engine's "bridge" network, or ""
// when it has none (the host then has no address for links).
func bridgeGateway(ctx context.Context, eng engine.Engine) string {
	nets, err := eng.ListNetworks(ctx, nil)
	if err != nil {
		return ""
	}
	for _, n := range nets {
		if n.Name == "bridge" && len(n.Gateways) > 0 {
			return n.Gateways[0]
		}
	}
	return ""
}

// probeContainers lists every container once, inspects the running ones
// (the list call does not return resource limits) with bounded
// concurrency, and sums their limits.
func probeContainers(ctx context.Context, eng engine.Engine, f *HostFacts, project string, concurrency int) error {
	all, err := eng.ListContainers(ctx, engine.ListOptions{All: true})
	if err != nil {
		return err
	}
	f.AllContainers = len(all)
	var running []engine.ContainerSummary
	for _, s := range all {
		if s.State == engine.StateRunning || s.State == engine.StateRestarting || s.State == engine.StatePaused {
			running = append(running, s)
		}
	}
	f.Running = len(running)
	f.UsedPorts = []UsedPort{}
	for _, s := range running {
		for _, p := range s.Ports {
			if p.HostPort > 0 {
				f.UsedPorts = append(f.UsedPorts, UsedPort{HostIP: p.HostIP, HostPort: p.HostPort, Protocol: p.Protocol, Container: s.Name})
			}
		}
	}
	inspected := make([]engine.Container, len(running))
	err = forEach(ctx, len(running), concurrency, func(ctx context.Context, i int) error {
		ct, err := eng.InspectContainer(ctx, running[i].ID)
		if errors.Is(err, engine.ErrNotFound) {
			return nil // removed between list and inspect: holds nothing now
		}
		inspected[i] = ct
		return err
	})
	if err != nil {
		return err
	}
	limits := map[string]Resources{}
	health := map[string]string{}
	for _, ct := range inspected {
		if ct.ID == "" {
			continue // not found
		}
		r := Resources{MilliCPU: ct.Spec.Resources.MilliCPUs(), MemoryBytes: ct.Spec.Resources.MemoryBytes()}
		if r.MilliCPU == 0 && r.MemoryBytes == 0 {
			f.Unbounded++
		}
		f.Allocated.MilliCPU += r.MilliCPU
		f.Allocated.MemoryBytes += r.MemoryBytes
		limits[ct.ID] = r
		health[ct.ID] = ct.Health.String()
	}
	for _, s := range all {
		if s.Labels[LabelProject] != project {
			continue
		}
		f.Managed = append(f.Managed, managed(s, limits[s.ID], health[s.ID]))
	}
	sort.Slice(f.Managed, func(i, j int) bool { return f.Managed[i].Name < f.Managed[j].Name })
	return nil
}

func managed(s engine.ContainerSummary, r Resources, health string) ManagedContainer {
	idx, err := strconv.Atoi(s.Labels[LabelIndex])
	if err != nil || idx < 0 {
		idx = -1
	}
	if health == "" {
		health = engine.HealthNone.String()
	}
	ports := s.Ports
	if ports == nil {
		ports = []engine.PortBinding{}
	}
	return ManagedContainer{
		ID: s.ID, Name: s.Name, Container: s.Labels[LabelContainer], Index: idx,
		ConfigHash: s.Labels[LabelConfigHash], State: s.State.String(), Health: health,
		Image: s.Image, ImageID: s.ImageID, Ports: ports, Resources: r,
	}
}

func probeImages(ctx context.Context, eng engine.Engine, f *HostFacts, images []string, concurrency int) error {
	facts := make([]ImageFacts, len(images))
	err := forEach(ctx, len(images), concurrency, func(ctx context.Context, i int) error {
		img, err := eng.ImageInspect(ctx, images[i])
		switch {
		case errors.Is(err, engine.ErrNotFound):
		case err != nil:
			return err
		default:
			facts[i] = ImageFacts{Present: true, ID: img.ID}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, img := range images {
		f.Images[img] = facts[i]
	}
	return nil
}

// forEach calls fn(ctx, 0..n-1) with at most limit calls in flight and
// returns the first error fn returned. That error cancels the calls in
// flight and skips the rest: a host that stops answering in the middle of
// a probe then costs one deadline, not one per queued call (n/limit
// deadlines in turn; 24 inspects at 4 with a 2s timeout took 12s on the
// lab before this).
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once    sync.Once
		first   error
		wg      sync.WaitGroup
		skipped bool
	)
	sem := make(chan struct{}, limit)
	for i := range n {
		sem <- struct{}{}
		if ctx.Err() != nil {
			skipped = true
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil && skipped {
		// The caller gave up before any call failed: the results are
		// incomplete.
		return ctx.Err()
	}
	return first
}

// counter counts the engine calls a probe makes.
type counter struct {
	engine.Engine
	calls atomic.Int64
}

func (c *counter) Info(ctx context.Context) (engine.Info, error) {
	c.calls.Add(1)
	return c.Engine.Info(ctx)
}

func (c *counter) ListContainers(ctx context.Context, opts engine.ListOptions) ([]engine.ContainerSummary, error) {
	c.calls.Add(1)
	return c.Engine.ListContainers(ctx, opts)
}

func (c *counter) InspectContainer(ctx context.Context, ref string) (engine.Container, error) {
	c.calls.Add(1)
	return c.Engine.InspectContainer(ctx, ref)
}

func (c *counter) ListNetworks(ctx context.Context, labels map[string]string) ([]engine.Network, error) {
	c.calls.Add(1)
	return c.Engine.ListNetworks(ctx, labels)
}

func (c *counter) ImageInspect(ctx context.Context, ref string) (engine.Image, error) {
	c.calls.Add(1)
	return c.Engine.ImageInspect(ctx, ref)
}

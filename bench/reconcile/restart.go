package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/dockplan/dockplan/lab/labenv"
)

const (
	// trialTimeout bounds the wait for one container to run again.
	trialTimeout = 30 * time.Second
	// betweenTrials separates trials. A test-image container stopped
	// within about 0.4 s of its start can lose its SIGTERM (its handler is
	// not installed yet), and its stop then waits the engine's 10 s
	// timeout (docs/benchmarks.md, "Apply"); Swarm trials stop the
	// container that the previous trial started.
	betweenTrials = time.Second
	// neverWait is how long the program watches for restarts that should
	// never come (restart policy always after docker stop).
	neverWait = 10 * time.Second
	// benchLabel marks the containers the program makes itself (not
	// "dockplan.": that prefix marks managed containers).
	benchLabel = "dockplan-bench.run"
)

// trial is one measured recovery.
type trial struct {
	// fromCall runs from just before the API call that took the container
	// down to the engine's start event of the container running again.
	fromCall time.Duration
	// fromDie runs from the engine's die event to that start event.
	fromDie time.Duration
}

// watch is a subscription to one host's container events, opened before
// the action it is to see.
type watch struct {
	msgs   <-chan events.Message
	errs   <-chan error
	cancel context.CancelFunc
}

// subscribe opens the events of the containers args selects. The Docker
// client returns once the engine answered, so no event after it is missed.
func subscribe(ctx context.Context, cli *client.Client, args filters.Args) *watch {
	args.Add("type", string(events.ContainerEventType))
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: args})
	return &watch{msgs: msgs, errs: errs, cancel: cancel}
}

// untilStart reads events until a start event that accept takes (nil
// takes any), and returns the first die event's and that start event's
// engine times. It closes the subscription.
func (w *watch) untilStart(ctx context.Context, timeout time.Duration, accept func(events.Message) bool) (die, start time.Time, id string, err error) {
	defer w.cancel()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-w.msgs:
			switch {
			case m.Action == events.ActionDie && die.IsZero():
				die = time.Unix(0, m.TimeNano)
			case m.Action == events.ActionStart && (accept == nil || accept(m)):
				return die, time.Unix(0, m.TimeNano), m.Actor.ID, nil
			}
		case err := <-w.errs:
			return die, start, "", fmt.Errorf("event stream: %w", err)
		case <-deadline:
			return die, start, "", errTimeout
		case <-ctx.Done():
			return die, start, "", ctx.Err()
		}
	}
}

// measure subscribes with args, runs down (which takes the container
// down), waits for a start event accept takes, checks through inspect that
// the container runs, and returns the trial and the running container.
func measure(ctx context.Context, cli *client.Client, args filters.Args, down func() error, accept func(events.Message) bool) (trial, string, error) {
	w := subscribe(ctx, cli, args)
	t0 := time.Now()
	if err := down(); err != nil {
		w.cancel()
		return trial{}, "", err
	}
	die, start, id, err := w.untilStart(ctx, trialTimeout, accept)
	if err != nil {
		return trial{}, "", err
	}
	c, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		return trial{}, "", err
	}
	if !c.State.Running {
		return trial{}, "", fmt.Errorf("container %s started but is %s", c.Name, c.State.Status)
	}
	t := trial{fromCall: start.Sub(t0)}
	if !die.IsZero() {
		t.fromDie = start.Sub(die)
	}
	return t, id, nil
}

// restartMode measures every row of the restart table and prints it.
func (b *bench) restartMode(ctx context.Context) error {
	var rows []row
	dockplanRows, err := b.dockplanTrials(ctx)
	if err != nil {
		return err
	}
	rows = append(rows, dockplanRows...)
	engineRows, err := b.restartPolicyTrials(ctx)
	if err != nil {
		return err
	}
	rows = append(rows, engineRows...)
	if !b.opts.skipSwarm {
		swarmRows, err := b.swarmTrials(ctx)
		if err != nil {
			return err
		}
		rows = append(rows, swarmRows...)
	}
	printRows(rows)
	return nil
}

// dockplanTrials applies three containers of -trials instances each
// (stop, crash with a published port, gone), runs the daemon, and takes
// one instance of each down per trial: every instance is repaired once.
func (b *bench) dockplanTrials(ctx context.Context) ([]row, error) {
	n := b.opts.trials
	p, err := b.newProject("", []block{
		{name: "stop", count: n, cpu: "0.05", memory: "32MiB"},
		{name: "crash", count: n, cpu: "0.05", memory: "32MiB", ports: []string{"8080"}},
		{name: "gone", count: n, cpu: "0.05", memory: "32MiB"},
	})
	if err != nil {
		return nil, err
	}
	progress("applying %d instances (project %s)", 3*n, p.name)
	took, err := p.apply(ctx)
	if err != nil {
		return nil, err
	}
	hostOf, running, err := p.placement(ctx)
	if err != nil {
		return nil, err
	}
	progress("applied in %.1fs: %d running", took.Seconds(), running)
	d, err := p.startDaemon()
	if err != nil {
		return nil, err
	}
	if err := d.waitReady(ctx, distinctHosts(hostOf)); err != nil {
		return nil, err
	}
	time.Sleep(betweenTrials)
	stop := row{what: "dockplan reconcile -daemon: docker stop"}
	crash := row{what: "dockplan reconcile -daemon: crash (exit 1)"}
	gone := row{what: "dockplan reconcile -daemon: docker rm -f (re-created)"}
	kinds := []struct {
		r     *row
		block string
	}{{&stop, "stop"}, {&crash, "crash"}, {&gone, "gone"}}
	for i := range n {
		for _, k := range kinds {
			name := fmt.Sprintf("%s-%s-%d", p.name, k.block, i)
			t, err := b.dockplanTrial(ctx, hostOf[name], name, k.block)
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", k.r.what, name, err)
			}
			progress("%s %s on %s: %s (from die %s)", k.r.what, name, hostOf[name], secs(t.fromCall), secs(t.fromDie))
			k.r.trials = append(k.r.trials, t)
			time.Sleep(betweenTrials)
		}
	}
	if err := d.stop(); err != nil {
		return nil, fmt.Errorf("reconcile daemon: %w", err)
	}
	notes := daemonNotes(d)
	stop.extra, crash.extra, gone.extra = notes["stop"], notes["crash"], notes["gone"]
	return []row{stop, crash, gone}, nil
}

// distinctHosts counts the hosts a placement uses.
func distinctHosts(hostOf map[string]string) int {
	seen := map[string]bool{}
	for _, h := range hostOf {
		seen[h] = true
	}
	return len(seen)
}

// dockplanTrial takes the container name down on host as the block's
// name says and waits until the daemon has it running again.
func (b *bench) dockplanTrial(ctx context.Context, host, name, how string) (trial, error) {
	cli := b.clients[host]
	if cli == nil {
		return trial{}, fmt.Errorf("no lab host %q holds %s", host, name)
	}
	var down func() error
	switch how {
	case "stop":
		down = func() error { return cli.ContainerStop(ctx, name, container.StopOptions{}) }
	case "gone":
		down = func() error { return cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}) }
	case "crash":
		url, err := b.crashURL(ctx, host, name)
		if err != nil {
			return trial{}, err
		}
		down = func() error { return crashContainer(ctx, url) }
	}
	t, _, err := measure(ctx, cli, filters.NewArgs(filters.Arg("container", name)), down, nil)
	return t, err
}

// crashURL returns the /crash?code=1 URL of a container that publishes
// 8080 on its lab host.
func (b *bench) crashURL(ctx context.Context, host, ref string) (string, error) {
	h, err := b.lab.Host(host)
	if err != nil {
		return "", err
	}
	c, err := b.clients[host].ContainerInspect(ctx, ref)
	if err != nil {
		return "", err
	}
	for _, binding := range c.NetworkSettings.Ports["8080/tcp"] {
		if binding.HostPort != "" {
			return fmt.Sprintf("http://%s:%s/crash?code=1", h.Address, binding.HostPort), nil
		}
	}
	return "", fmt.Errorf("%s publishes no host port for 8080/tcp", ref)
}

// crashContainer asks the test program to exit with code 1.
func crashContainer(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// daemonNotes sums up the daemon's own log per block: its recovery times
// (from noticing to running, as it logs them), the repair's own duration,
// the causes it acted on, and the lines that are neither a repair nor the
// expected warning about a new host port (printed on stderr).
func daemonNotes(d *daemon) map[string]string {
	lines, _ := d.snapshot()
	type sum struct {
		recovery, duration []time.Duration
		causes             map[string]int
		portWarnings       int
	}
	sums := map[string]*sum{}
	get := func(addr string) *sum {
		block, _, _ := strings.Cut(addr, "[")
		if sums[block] == nil {
			sums[block] = &sum{causes: map[string]int{}}
		}
		return sums[block]
	}
	unexpected := 0
	for _, l := range lines {
		switch {
		case l.Msg == "started container" || l.Msg == "re-created container":
			s := get(l.Address)
			s.recovery = append(s.recovery, l.Recovery)
			s.duration = append(s.duration, l.Duration)
			s.causes[l.Action+" on "+l.Cause]++
		case strings.HasPrefix(l.Msg, "published host ports changed"):
			get(l.Address).portWarnings++
		case l.Level == "WARN" || l.Level == "ERROR" || l.Msg == "backing off":
			unexpected++
			progress("daemon log: %s", l.raw)
		}
	}
	out := map[string]string{}
	for block, s := range sums {
		if len(s.recovery) == 0 {
			continue
		}
		var causes []string
		for c, n := range s.causes {
			causes = append(causes, fmt.Sprintf("%d× %s", n, c))
		}
		slices.Sort(causes)
		out[block] = fmt.Sprintf("daemon: recovery median %s, worst %s; repair itself median %s; %s",
			secs(median(s.recovery)), secs(slices.Max(s.recovery)), secs(median(s.duration)), strings.Join(causes, ", "))
		if s.portWarnings > 0 {
			out[block] += fmt.Sprintf("; %d× new host port", s.portWarnings)
		}
		if unexpected > 0 {
			out[block] += fmt.Sprintf("; %d other warnings or errors (stderr)", unexpected)
		}
	}
	return out
}

// restartPolicyTrials makes -trials containers with restart policy always
// (a published port for /crash) round-robin on the lab hosts, crashes
// each once, then stops them all and counts the restarts within
// neverWait.
func (b *bench) restartPolicyTrials(ctx context.Context) ([]row, error) {
	label := benchLabel + "=" + b.run
	b.defer_(func(ctx context.Context) { b.removeLabelled(ctx, label) })
	type made struct{ host, id string }
	var cs []made
	progress("creating %d containers with restart policy always", b.opts.trials)
	for i := range b.opts.trials {
		h := b.lab.Hosts[i%len(b.lab.Hosts)]
		cli := b.clients[h.Name]
		resp, err := cli.ContainerCreate(ctx,
			&container.Config{Image: labenv.TestImage, Labels: map[string]string{benchLabel: b.run}},
			&container.HostConfig{
				RestartPolicy:   container.RestartPolicy{Name: container.RestartPolicyAlways},
				PublishAllPorts: true,
				Resources:       container.Resources{NanoCPUs: 5e7, Memory: 32 << 20},
			}, nil, nil, fmt.Sprintf("%s-always-%d", b.run, i))
		if err != nil {
			return nil, fmt.Errorf("%s: create: %w", h.Name, err)
		}
		if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			return nil, fmt.Errorf("%s: start: %w", h.Name, err)
		}
		cs = append(cs, made{host: h.Name, id: resp.ID})
	}
	time.Sleep(betweenTrials)
	crash := row{what: "restart policy always: crash (exit 1)", extra: "the engine's restart manager waits 100 ms before the first restart"}
	for _, c := range cs {
		url, err := b.crashURL(ctx, c.host, c.id)
		if err != nil {
			return nil, err
		}
		t, _, err := measure(ctx, b.clients[c.host], filters.NewArgs(filters.Arg("container", c.id)),
			func() error { return crashContainer(ctx, url) }, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", crash.what, err)
		}
		progress("%s %s on %s: %s (from die %s)", crash.what, c.id[:12], c.host, secs(t.fromCall), secs(t.fromDie))
		crash.trials = append(crash.trials, t)
		time.Sleep(betweenTrials)
	}
	floor := row{what: "floor: this program starts it on the die event, docker stop",
		extra: "the least any restarter outside the engine can take: one start call"}
	for _, c := range cs {
		t, err := floorTrial(ctx, b.clients[c.host], c.id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", floor.what, err)
		}
		progress("%s %s on %s: %s (from die %s)", floor.what, c.id[:12], c.host, secs(t.fromCall), secs(t.fromDie))
		floor.trials = append(floor.trials, t)
		time.Sleep(betweenTrials)
	}
	starts, running, err := b.stopAndCount(ctx, label, len(cs))
	if err != nil {
		return nil, err
	}
	stop := row{what: "restart policy always: docker stop",
		note: fmt.Sprintf("never: %d start events and %d of %d running %v after docker stop", starts, running, len(cs), neverWait)}
	return []row{floor, crash, stop}, nil
}

// floorTrial stops the container and starts it again itself as soon as
// the engine reports its die event, and times it like the other trials.
func floorTrial(ctx context.Context, cli *client.Client, id string) (trial, error) {
	w := subscribe(ctx, cli, filters.NewArgs(filters.Arg("container", id)))
	defer w.cancel()
	errs := make(chan error, 2)
	t0 := time.Now()
	go func() { errs <- cli.ContainerStop(ctx, id, container.StopOptions{}) }()
	var die time.Time
	deadline := time.After(trialTimeout)
	for {
		select {
		case m := <-w.msgs:
			switch {
			case m.Action == events.ActionDie && die.IsZero():
				die = time.Unix(0, m.TimeNano)
				go func() { errs <- cli.ContainerStart(ctx, id, container.StartOptions{}) }()
			case m.Action == events.ActionStart && !die.IsZero():
				start := time.Unix(0, m.TimeNano)
				for range 2 { // the stop's and the start's answers
					if err := <-errs; err != nil {
						return trial{}, err
					}
				}
				return trial{fromCall: start.Sub(t0), fromDie: start.Sub(die)}, nil
			}
		case err := <-w.errs:
			return trial{}, fmt.Errorf("event stream: %w", err)
		case <-deadline:
			return trial{}, errTimeout
		case <-ctx.Done():
			return trial{}, ctx.Err()
		}
	}
}

// stopAndCount stops every container carrying label on every lab host,
// watches neverWait for start events, and returns how many came and how
// many of the containers run at the end.
func (b *bench) stopAndCount(ctx context.Context, label string, want int) (starts, running int, err error) {
	type stopped struct {
		cli *client.Client
		id  string
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	merged := make(chan events.Message)
	var cs []stopped
	for _, h := range b.lab.Hosts {
		cli := b.clients[h.Name]
		list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			return 0, 0, err
		}
		for _, c := range list {
			cs = append(cs, stopped{cli, c.ID})
		}
		w := subscribe(wctx, cli, filters.NewArgs(filters.Arg("label", label)))
		go func() {
			for {
				select {
				case m := <-w.msgs:
					select {
					case merged <- m:
					case <-wctx.Done():
						return
					}
				case <-wctx.Done():
					return
				}
			}
		}()
	}
	if len(cs) != want {
		return 0, 0, fmt.Errorf("%d containers run with %s, want %d", len(cs), label, want)
	}
	progress("docker stop of %d containers with restart policy always; watching %v for restarts", len(cs), neverWait)
	for _, c := range cs {
		if err := c.cli.ContainerStop(ctx, c.id, container.StopOptions{}); err != nil {
			return 0, 0, err
		}
	}
	deadline := time.After(neverWait)
	for waiting := true; waiting; {
		select {
		case m := <-merged:
			if m.Action == events.ActionStart {
				starts++
			}
		case <-deadline:
			waiting = false
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	for _, c := range cs {
		if s, err := c.cli.ContainerInspect(ctx, c.id); err == nil && s.State.Running {
			running++
		}
	}
	return starts, running, nil
}

// Command floor is the lower bound that docs/benchmarks.md sets beside
// `dockplan apply`, `destroy` and `plan`: it does the same Docker work
// straight through the Docker Go client, with nothing else around it (no
// configuration, no probe, no plan, no state).
//
//	floor [-n 60] [-label K=V] ENDPOINT...            create and start N containers
//	floor -remove [-label K=V] ENDPOINT...            stop and remove them
//	floor -inspect [-label K=V] ENDPOINT...           list and inspect them
//
// Create makes N containers of the test image (dockplan-testapp:dev, which
// must already be on every engine: nothing is pulled) with 32 MiB and
// 0.05 CPU each, round-robin over the endpoints, and starts each one right
// after creating it. Every container carries the label K=V (default
// dockplan-floor.run=floor) and is named floor-V-I. -remove stops (SIGTERM,
// the engine's default timeout) and removes every container carrying that
// label, as `dockplan destroy` does; -inspect lists them and inspects each,
// as a refresh would. Each container's calls run in their own goroutine,
// at most -parallelism of them at once and at most -per-host on one
// endpoint: dockplan apply's defaults (10 and 4).
//
// It prints one line with the wall time of the work (from before the first
// connection to the end of the last call) and exits 1 if any call failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// options are the command line.
type options struct {
	n           int
	image       string
	labelKey    string
	labelValue  string
	parallelism int
	perHost     int
	remove      bool
	inspect     bool
	endpoints   []string
}

// engine is one endpoint's client and its slots.
type engine struct {
	addr  string
	cli   *client.Client
	slots chan struct{}
}

func main() {
	opts, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	if err := run(context.Background(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	label := flag.String("label", "dockplan-floor.run=floor", "the `K=V` label that marks (create) or selects (-remove, -inspect) the containers")
	flag.IntVar(&o.n, "n", 60, "how many containers to create")
	flag.StringVar(&o.image, "image", "dockplan-testapp:dev", "the `IMAGE`, already present on every engine")
	flag.IntVar(&o.parallelism, "parallelism", 10, "at most `N` containers in work at once")
	flag.IntVar(&o.perHost, "per-host", 4, "at most `N` of them on one endpoint")
	flag.BoolVar(&o.remove, "remove", false, "stop and remove the labelled containers instead of creating")
	flag.BoolVar(&o.inspect, "inspect", false, "list and inspect the labelled containers instead of creating")
	flag.Parse()
	o.endpoints = flag.Args()
	var ok bool
	o.labelKey, o.labelValue, ok = strings.Cut(*label, "=")
	switch {
	case len(o.endpoints) == 0:
		return o, errors.New("give at least one Docker endpoint (tcp://ADDR:PORT or unix:///PATH)")
	case !ok || o.labelKey == "" || o.labelValue == "":
		return o, fmt.Errorf("-label %q is not K=V", *label)
	case o.remove && o.inspect:
		return o, errors.New("-remove and -inspect exclude each other")
	case o.parallelism < 1 || o.perHost < 1 || o.n < 0:
		return o, errors.New("-parallelism and -per-host must be at least 1, -n not negative")
	}
	return o, nil
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	engines := make([]*engine, len(o.endpoints))
	for i, addr := range o.endpoints {
		cli, err := client.NewClientWithOpts(client.WithHost(addr), client.WithAPIVersionNegotiation())
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		defer cli.Close()
		engines[i] = &engine{addr: addr, cli: cli, slots: make(chan struct{}, o.perHost)}
	}
	var jobs []job
	verb := "create"
	switch {
	case o.remove, o.inspect:
		var err error
		if jobs, err = listJobs(ctx, engines, o); err != nil {
			return err
		}
		verb = "inspect"
		if o.remove {
			verb = "remove"
		}
	default:
		for i := range o.n {
			jobs = append(jobs, job{eng: engines[i%len(engines)], name: fmt.Sprintf("floor-%s-%d", o.labelValue, i)})
		}
	}
	err := runJobs(ctx, jobs, o)
	fmt.Printf("floor %s: %d containers on %d endpoints in %.3fs\n", verb, len(jobs), len(engines), time.Since(start).Seconds())
	return err
}

// job is one container's sequence of calls on one engine: create and
// start, stop and remove, or inspect.
type job struct {
	eng  *engine
	name string // the container's name (create) or ID (the others)
}

// listJobs lists the labelled containers on every engine, stopped ones
// included.
func listJobs(ctx context.Context, engines []*engine, o options) ([]job, error) {
	var jobs []job
	for _, e := range engines {
		list, err := e.cli.ContainerList(ctx, container.ListOptions{
			All: true, Filters: filters.NewArgs(filters.Arg("label", o.labelKey+"="+o.labelValue)),
		})
		if err != nil {
			return nil, fmt.Errorf("%s: list containers: %w", e.addr, err)
		}
		for _, c := range list {
			jobs = append(jobs, job{eng: e, name: c.ID})
		}
	}
	return jobs, nil
}

// runJobs runs every job in its own goroutine, each taking its engine's
// slot and then a global slot. In that order a job waiting for a busy
// engine never holds a global slot, so the global limit is always used
// when jobs on other engines are waiting.
func runJobs(ctx context.Context, jobs []job, o options) error {
	slots := make(chan struct{}, o.parallelism)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			j.eng.slots <- struct{}{}
			slots <- struct{}{}
			defer func() { <-slots; <-j.eng.slots }()
			if err := j.do(ctx, o); err != nil {
				errs[i] = fmt.Errorf("%s: %s: %w", j.eng.addr, j.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (j job) do(ctx context.Context, o options) error {
	cli := j.eng.cli
	switch {
	case o.remove:
		if err := cli.ContainerStop(ctx, j.name, container.StopOptions{}); err != nil {
			return err
		}
		return cli.ContainerRemove(ctx, j.name, container.RemoveOptions{})
	case o.inspect:
		_, err := cli.ContainerInspect(ctx, j.name)
		return err
	}
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: o.image, Labels: map[string]string{o.labelKey: o.labelValue}},
		&container.HostConfig{Resources: container.Resources{NanoCPUs: 5e7, Memory: 32 << 20}},
		nil, nil, j.name)
	if err != nil {
		return err
	}
	return cli.ContainerStart(ctx, resp.ID, container.StartOptions{})
}

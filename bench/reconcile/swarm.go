package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/dockplan/dockplan/lab/labenv"
)

// serviceLabel is the label Swarm puts on a task's container.
const serviceLabel = "com.docker.swarm.service.id"

// swarmTrials makes the swarm host a one-node swarm, and for the default
// restart delay and a delay of 0 creates a one-replica service of the test
// image, stops its task's container -trials times and times the
// replacement task's container; then it removes the services, leaves the
// swarm and removes the networks the swarm added.
func (b *bench) swarmTrials(ctx context.Context) ([]row, error) {
	h, err := b.lab.Host(b.opts.swarmHost)
	if err != nil {
		return nil, err
	}
	cli := b.clients[h.Name]
	info, err := cli.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		return nil, fmt.Errorf("%s is in a swarm already (%s): not touching it; use -skip-swarm or another -swarm-host", h.Name, info.Swarm.LocalNodeState)
	}
	// A service's image is pulled on every task start unless it is named by
	// its ID: the ID of the local test image avoids a pull that cannot
	// succeed here (and keeps the figure free of registry time).
	img, err := cli.ImageInspect(ctx, labenv.TestImage)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	networksBefore, err := networkNames(ctx, cli)
	if err != nil {
		return nil, err
	}
	progress("docker swarm init on %s (advertise %s)", h.Name, h.Address)
	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: h.Address + ":2377", AdvertiseAddr: h.Address}); err != nil {
		return nil, fmt.Errorf("%s: swarm init: %w", h.Name, err)
	}
	b.defer_(func(ctx context.Context) { leaveSwarm(ctx, cli, h.Name, networksBefore) })
	zero := time.Duration(0)
	var rows []row
	for _, v := range []struct {
		what  string
		delay *time.Duration
	}{
		{"swarm service, default restart delay (5 s): docker stop", nil},
		{"swarm service, --restart-delay 0: docker stop", &zero},
	} {
		r := row{what: v.what}
		if r.trials, err = b.serviceTrials(ctx, cli, img.ID, v.delay, len(rows)); err != nil {
			return nil, fmt.Errorf("%s: %w", v.what, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// serviceTrials creates one service, times -trials replacements of its
// task, and removes the service.
func (b *bench) serviceTrials(ctx context.Context, cli *client.Client, imageID string, delay *time.Duration, i int) ([]trial, error) {
	one := uint64(1)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: fmt.Sprintf("%s-svc%d", b.run, i), Labels: map[string]string{benchLabel: b.run}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: imageID, Labels: map[string]string{benchLabel: b.run}},
			Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 5e7, MemoryBytes: 32 << 20}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: delay},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	}
	resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		return nil, fmt.Errorf("service create: %w", err)
	}
	defer removeService(context.WithoutCancel(ctx), cli, resp.ID)
	byService := filters.NewArgs(filters.Arg("label", serviceLabel+"="+resp.ID))
	id, err := waitRunning(ctx, cli, byService, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("first task: %w", err)
	}
	time.Sleep(betweenTrials)
	var out []trial
	for range b.opts.trials {
		old := id
		t, next, err := measure(ctx, cli, byService.Clone(),
			func() error { return cli.ContainerStop(ctx, old, container.StopOptions{}) },
			func(m events.Message) bool { return m.Actor.ID != old })
		if err != nil {
			return nil, err
		}
		progress("swarm task replaced (%s -> %s): %s (from die %s)", old[:12], next[:12], secs(t.fromCall), secs(t.fromDie))
		out, id = append(out, t), next
		time.Sleep(betweenTrials)
	}
	return out, nil
}

// waitRunning polls until one container args selects runs, and returns it.
func waitRunning(ctx context.Context, cli *client.Client, args filters.Args, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		list, err := cli.ContainerList(ctx, container.ListOptions{Filters: args})
		if err != nil {
			return "", err
		}
		if len(list) == 1 {
			return list[0].ID, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", errTimeout
}

// removeService removes a service and waits up to 30 s for Swarm to
// remove its tasks' containers, then removes what is left.
func removeService(ctx context.Context, cli *client.Client, id string) {
	if err := cli.ServiceRemove(ctx, id); err != nil {
		progress("service remove %s: %v", id, err)
	}
	args := filters.NewArgs(filters.Arg("label", serviceLabel+"="+id))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
		if err != nil || len(list) == 0 {
			return
		}
	}
	list, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	for _, c := range list {
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}

// leaveSwarm leaves the swarm (force: the node is its only manager) and
// removes the networks that were not there before it, so the host is as
// it was.
func leaveSwarm(ctx context.Context, cli *client.Client, host string, before []string) {
	progress("docker swarm leave --force on %s", host)
	if err := cli.SwarmLeave(ctx, true); err != nil {
		progress("%s: swarm leave: %v", host, err)
	}
	after, err := networkNames(ctx, cli)
	if err != nil {
		progress("%s: %v", host, err)
		return
	}
	for _, name := range after {
		if !slices.Contains(before, name) {
			if err := cli.NetworkRemove(ctx, name); err != nil {
				progress("%s: remove network %s: %v", host, name, err)
			}
		}
	}
	if info, err := cli.Info(ctx); err == nil {
		progress("%s: swarm state %s", host, info.Swarm.LocalNodeState)
	}
}

// networkNames lists the engine's networks by name, sorted.
func networkNames(ctx context.Context, cli *client.Client) ([]string, error) {
	list, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range list {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names, nil
}

package engine

import (
	"context"
	"sort"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/system"
)

// Info pings the engine and returns what `docker info` reports.
func (e *dockerEngine) Info(ctx context.Context) (Info, error) {
	ping, err := e.ping(ctx)
	if err != nil {
		return Info{}, err
	}
	raw, err := call(e, ctx, "info", "", func(ctx context.Context) (system.Info, error) {
		return e.cli.Info(ctx)
	})
	if err != nil {
		return Info{}, err
	}
	return Info{
		ID:                raw.ID,
		Name:              raw.Name,
		ServerVersion:     raw.ServerVersion,
		APIVersion:        ping.APIVersion,
		ClientAPIVersion:  e.cli.ClientVersion(),
		OS:                raw.OSType,
		OperatingSystem:   raw.OperatingSystem,
		Arch:              raw.Architecture,
		KernelVersion:     raw.KernelVersion,
		NCPU:              raw.NCPU,
		MemTotal:          raw.MemTotal,
		Labels:            labelsFromList(raw.Labels),
		Containers:        raw.Containers,
		ContainersRunning: raw.ContainersRunning,
	}, nil
}

// ListContainers lists containers by label in one API call.
func (e *dockerEngine) ListContainers(ctx context.Context, opts ListOptions) ([]ContainerSummary, error) {
	args := filters.NewArgs()
	for _, l := range labelFilters(opts.Labels) {
		args.Add("label", l)
	}
	raw, err := call(e, ctx, "list containers", "", func(ctx context.Context) ([]container.Summary, error) {
		return e.cli.ContainerList(ctx, container.ListOptions{All: opts.All, Filters: args})
	})
	if err != nil {
		return nil, err
	}
	out := make([]ContainerSummary, 0, len(raw))
	for _, s := range raw {
		out = append(out, summaryFromDocker(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// InspectContainer returns one container's details.
func (e *dockerEngine) InspectContainer(ctx context.Context, containerRef string) (Container, error) {
	raw, err := call(e, ctx, "inspect container", containerRef, func(ctx context.Context) (container.InspectResponse, error) {
		return e.cli.ContainerInspect(ctx, containerRef)
	})
	if err != nil {
		return Container{}, err
	}
	return containerFromInspect(raw), nil
}

// CreateContainer creates a container from spec and returns its ID.
func (e *dockerEngine) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	cfg, hostCfg, netCfg := createConfig(spec)
	resp, err := call(e, ctx, "create container", spec.Name, func(ctx context.Context) (container.CreateResponse, error) {
		return e.cli.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, spec.Name)
	})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// StartContainer starts a container.
func (e *dockerEngine) StartContainer(ctx context.Context, containerRef string) error {
	return e.do(ctx, "start container", containerRef, e.timeout, func(ctx context.Context) error {
		return e.cli.ContainerStart(ctx, containerRef, container.StartOptions{})
	})
}

// StopContainer stops a container. The call's deadline is the endpoint
// timeout plus the stop timeout, since the engine answers only once the
// container is down. With a zero timeout the container's own stop timeout
// applies, which we do not know here; the deadline then allows for Docker's
// largest common choice, a minute.
func (e *dockerEngine) StopContainer(ctx context.Context, containerRef string, timeout time.Duration) error {
	opts := container.StopOptions{}
	wait := time.Minute
	if timeout > 0 {
		secs := int((timeout + time.Second - 1) / time.Second)
		opts.Timeout = &secs
		wait = time.Duration(secs) * time.Second
	}
	return e.do(ctx, "stop container", containerRef, e.timeout+wait, func(ctx context.Context) error {
		return e.cli.ContainerStop(ctx, containerRef, opts)
	})
}

// KillContainer sends a signal to a container.
func (e *dockerEngine) KillContainer(ctx context.Context, containerRef, signal string) error {
	if signal == "" {
		signal = "SIGKILL"
	}
	return e.do(ctx, "kill container", containerRef, e.timeout, func(ctx context.Context) error {
		return e.cli.ContainerKill(ctx, containerRef, signal)
	})
}

// RemoveContainer removes a container.
func (e *dockerEngine) RemoveContainer(ctx context.Context, containerRef string, opts RemoveOptions) error {
	return e.do(ctx, "remove container", containerRef, e.timeout, func(ctx context.Context) error {
		return e.cli.ContainerRemove(ctx, containerRef, container.RemoveOptions{
			Force: opts.Force, RemoveVolumes: opts.RemoveVolumes,
		})
	})
}

// RenameContainer renames a container.
func (e *dockerEngine) RenameContainer(ctx context.Context, containerRef, newName string) error {
	return e.do(ctx, "rename container", containerRef, e.timeout, func(ctx context.Context) error {
		return e.cli.ContainerRename(ctx, containerRef, newName)
	})
}

// UpdateResources changes a container's limits in place. As with `docker
// update`, zero fields leave the current value as it is.
//
// Docker gives a container a swap limit (memory+swap) of twice its memory
// limit at create time, and the kernel refuses a memory limit above the
// swap limit: raising 64MiB to 256MiB alone fails on 20.10/cgroup v1 with
// "memory.limit_in_bytes: invalid argument" (a swap of -1 is not passed on
// to runc either). So a new memory limit goes with a swap limit of twice
// that, Docker's own default, which runc then writes in a valid order.
// UpdateRestartPolicy changes a container's restart policy in place.
func (e *dockerEngine) UpdateRestartPolicy(ctx context.Context, containerRef string, policy RestartPolicy) error {
	upd := container.UpdateConfig{RestartPolicy: container.RestartPolicy{
		Name: container.RestartPolicyMode(policy.Name.String()), MaximumRetryCount: policy.MaxRetries,
	}}
	return e.do(ctx, "update restart policy", containerRef, e.timeout, func(ctx context.Context) error {
		_, err := e.cli.ContainerUpdate(ctx, containerRef, upd)
		return err
	})
}

func (e *dockerEngine) UpdateResources(ctx context.Context, containerRef string, res Resources) error {
	upd := container.UpdateConfig{Resources: resourcesToDocker(res)}
	if res.Memory > 0 {
		upd.Resources.MemorySwap = 2 * res.Memory
	}
	return e.do(ctx, "update container", containerRef, e.timeout, func(ctx context.Context) error {
		_, err := e.cli.ContainerUpdate(ctx, containerRef, upd)
		return err
	})
}

package engine

import (
	"context"
	"io"
	"time"
)

// Engine is one Docker engine, holding only the calls dockplan makes. All
// methods are safe for concurrent use. Every error is an *Error naming the
// host block; test its kind with errors.Is (ErrNotFound, ErrConflict,
// ErrUnreachable).
//
// A container argument (containerRef) is a container ID or name.
type Engine interface {
	// HostName returns the name of the host block this engine was dialled for.
	HostName() string
	// Info pings the engine and returns what `docker info` reports.
	Info(ctx context.Context) (Info, error)

	// ListContainers lists containers matching opts, running only unless
	// opts.All is set, ordered by name.
	ListContainers(ctx context.Context, opts ListOptions) ([]ContainerSummary, error)
	// InspectContainer returns one container's details.
	InspectContainer(ctx context.Context, containerRef string) (Container, error)
	// CreateContainer creates (but does not start) a container and returns
	// its ID. A name already in use is ErrConflict; a missing image is
	// ErrNotFound (nothing is pulled implicitly).
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	// StartContainer starts a created or stopped container.
	StartContainer(ctx context.Context, containerRef string) error
	// StopContainer stops a container, killing it after timeout. A zero
	// timeout uses the container's own stop timeout.
	StopContainer(ctx context.Context, containerRef string, timeout time.Duration) error
	// KillContainer sends a signal to a running container; an empty signal
	// means SIGKILL.
	KillContainer(ctx context.Context, containerRef, signal string) error
	// RemoveContainer removes a container.
	RemoveContainer(ctx context.Context, containerRef string, opts RemoveOptions) error
	// RenameContainer gives a container a new name.
	RenameContainer(ctx context.Context, containerRef, newName string) error
	// UpdateResources changes a container's CPU and memory limits in place.
	UpdateResources(ctx context.Context, containerRef string, res Resources) error
	// UpdateRestartPolicy changes a container's restart policy in place.
	UpdateRestartPolicy(ctx context.Context, containerRef string, policy RestartPolicy) error

	// PullImage pulls an image, reporting progress to opts.Progress.
	PullImage(ctx context.Context, ref string, opts PullOptions) error
	// ImageInspect returns an image's details; a missing image is ErrNotFound.
	ImageInspect(ctx context.Context, ref string) (Image, error)
	// ImagePresent reports whether the image is on the engine.
	ImagePresent(ctx context.Context, ref string) (bool, error)
	// ImageSave returns the images as a `docker save` tar stream; the
	// caller closes it.
	ImageSave(ctx context.Context, refs []string) (io.ReadCloser, error)
	// ImageLoad loads a `docker save` tar stream.
	ImageLoad(ctx context.Context, tar io.Reader) error

	// EnsureNetwork returns the named network, creating it when missing.
	EnsureNetwork(ctx context.Context, spec NetworkSpec) (Network, error)
	// ListNetworks lists networks carrying all the given labels (see
	// ListOptions.Labels for the matching rule), ordered by name.
	ListNetworks(ctx context.Context, labels map[string]string) ([]Network, error)
	// RemoveNetwork removes a network.
	RemoveNetwork(ctx context.Context, networkRef string) error

	// Events streams container events matching filter until ctx ends or
	// the stream fails. The event channel is closed when the stream ends;
	// the error channel then receives at most one error (nil is never
	// sent; the caller's cancellation sends nothing).
	Events(ctx context.Context, filter EventFilter) (<-chan Event, <-chan error)

	// Close releases the engine's connections.
	Close() error
}

// Info is what an engine reports about itself.
type Info struct {
	// ID is the engine's ID. Lab hosts on one machine share it; identify
	// hosts by Name or by a label instead.
	ID string
	// Name is the engine's host name.
	Name string
	// ServerVersion is the engine version, for example "20.10.24+dfsg1".
	ServerVersion string
	// APIVersion is the highest API version the engine speaks.
	APIVersion string
	// ClientAPIVersion is the API version used for calls after negotiation.
	ClientAPIVersion string
	// OS is the engine's OS type ("linux").
	OS string
	// OperatingSystem is the distribution, for example "Debian GNU/Linux 12".
	OperatingSystem string
	// Arch is the machine architecture as the engine reports it ("x86_64").
	Arch string
	// KernelVersion is the kernel release.
	KernelVersion string
	// NCPU is the number of CPUs the engine sees.
	NCPU int
	// MemTotal is the memory the engine sees, in bytes.
	MemTotal int64
	// Labels are the engine's labels (dockerd --label).
	Labels map[string]string
	// Containers and ContainersRunning count all and running containers.
	Containers, ContainersRunning int
}

// ListOptions selects containers in ListContainers.
type ListOptions struct {
	// Labels must all match. An empty value matches any container that has
	// the label; otherwise the value must be equal.
	Labels map[string]string
	// All includes stopped and created containers, not only running ones.
	All bool
}

// RemoveOptions tune RemoveContainer.
type RemoveOptions struct {
	// Force kills a running container before removing it.
	Force bool
	// RemoveVolumes removes the container's anonymous volumes too.
	RemoveVolumes bool
}

// PullOptions tune PullImage.
type PullOptions struct {
	// RegistryAuth is the base64-encoded JSON auth config for the registry,
	// as `docker login` stores it; empty for anonymous pulls.
	RegistryAuth string
	// Platform is "os/arch[/variant]"; empty means the engine's own.
	Platform string
	// Progress, when set, receives each progress message in order.
	Progress func(PullProgress)
}

// PullProgress is one progress message of a pull.
type PullProgress struct {
	// ID is the layer or tag the message is about.
	ID string
	// Status is the engine's words ("Downloading", "Pull complete").
	Status string
	// Current and Total are bytes done and expected; zero when unknown.
	Current, Total int64
}

// Image is an image on an engine.
type Image struct {
	// ID is the image ID ("sha256:…").
	ID string
	// RepoTags and RepoDigests are the image's names.
	RepoTags, RepoDigests []string
	// Created is when the image was built.
	Created time.Time
	// OS and Arch are the image's platform.
	OS, Arch string
	// Size is the image size in bytes.
	Size int64
	// Labels are the image config's labels.
	Labels map[string]string
}

// NetworkSpec describes a network for EnsureNetwork.
type NetworkSpec struct {
	// Name is the network name.
	Name string
	// Driver is the network driver; empty means "bridge".
	Driver string
	// Labels are set when the network is created.
	Labels map[string]string
}

// Network is a network on an engine.
type Network struct {
	// ID and Name identify the network.
	ID, Name string
	// Driver is the network driver.
	Driver string
	// Labels are the network's labels.
	Labels map[string]string
	// Gateways are the gateway addresses of the network's subnets; on a
	// bridge network containers reach the host's published ports there.
	Gateways []string
}

// EventFilter selects events for Events. Only container events are streamed.
type EventFilter struct {
	// Labels must all match, with the rule of ListOptions.Labels.
	Labels map[string]string
	// Since replays events from that time; zero means only new events.
	Since time.Time
}

// Event is one container event.
type Event struct {
	// Action is what happened.
	Action EventAction
	// ContainerID is the container's ID.
	ContainerID string
	// Name is the container's name (without a leading slash).
	Name string
	// Image is the container's image reference.
	Image string
	// Attributes are the event's attributes: the container's labels plus
	// keys such as "exitCode" on die events.
	Attributes map[string]string
	// Time is when it happened.
	Time time.Time
}

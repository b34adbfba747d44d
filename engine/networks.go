package engine

import (
	"context"
	"errors"
	"net/netip"
	"sort"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// EnsureNetwork returns the named network, creating it when missing. Two
// callers racing to create it both succeed: the loser finds the winner's.
func (e *dockerEngine) EnsureNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	nw, err := e.inspectNetwork(ctx, spec.Name)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return nw, err
	}
	driver := spec.Driver
	if driver == "" {
		driver = "bridge"
	}
	_, err = call(e, ctx, "create network", spec.Name, func(ctx context.Context) (network.CreateResponse, error) {
		return e.cli.NetworkCreate(ctx, spec.Name, network.CreateOptions{Driver: driver, Labels: spec.Labels})
	})
	if err != nil && !errors.Is(err, ErrConflict) {
		return Network{}, err
	}
	return e.inspectNetwork(ctx, spec.Name)
}

// inspectNetwork looks a network up by name or ID. The engine matches
// names by prefix too, so the name is checked.
func (e *dockerEngine) inspectNetwork(ctx context.Context, ref string) (Network, error) {
	raw, err := call(e, ctx, "inspect network", ref, func(ctx context.Context) (network.Inspect, error) {
		return e.cli.NetworkInspect(ctx, ref, network.InspectOptions{})
	})
	if err != nil {
		return Network{}, err
	}
	if raw.Name != ref && raw.ID != ref {
		return Network{}, NewError(e.hostName, "inspect network", ref, ErrNotFound, nil)
	}
	return networkFromDocker(raw), nil
}

// ListNetworks lists networks carrying the labels, ordered by name.
func (e *dockerEngine) ListNetworks(ctx context.Context, labels map[string]string) ([]Network, error) {
	args := filters.NewArgs()
	for _, l := range labelFilters(labels) {
		args.Add("label", l)
	}
	raw, err := call(e, ctx, "list networks", "", func(ctx context.Context) ([]network.Summary, error) {
		return e.cli.NetworkList(ctx, network.ListOptions{Filters: args})
	})
	if err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(raw))
	for _, n := range raw {
		out = append(out, networkFromDocker(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveNetwork removes a network.
func (e *dockerEngine) RemoveNetwork(ctx context.Context, networkRef string) error {
	return e.do(ctx, "remove network", networkRef, e.timeout, func(ctx context.Context) error {
		return e.cli.NetworkRemove(ctx, networkRef)
	})
}

func networkFromDocker(n network.Inspect) Network {
	nw := Network{ID: n.ID, Name: n.Name, Driver: n.Driver, Labels: n.Labels}
	for _, c := range n.IPAM.Config {
		switch pfx, err := netip.ParsePrefix(c.Subnet); {
		case c.Gateway != "":
			nw.Gateways = append(nw.Gateways, c.Gateway)
		case err == nil:
			// Docker 20.10 reports no gateway for the default bridge; it
			// is the subnet's first address (docker0, or dockerd --bip).
			nw.Gateways = append(nw.Gateways, pfx.Masked().Addr().Next().String())
		}
	}
	return nw
}

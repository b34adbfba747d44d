package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/render"
	"github.com/spf13/cobra"
)

// hostsOptions are the options of `dockplan hosts`.
type hostsOptions struct {
	global       *globalOptions
	vars         varFlags
	json         bool
	probeTimeout time.Duration
}

func newHostsCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &hostsOptions{global: g}
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "Show every host: reachable, engine, free CPU and memory",
		Long: `Hosts probes every host of the configuration in parallel and prints one
row each: whether it answered (and how fast), its engine version, CPU and
memory (total, allocated to running containers, free for placement), the
project's containers and all containers, and how many running containers
have no limit at all (they can take any amount).

Exit status: 0 when every host answered, 1 when one did not (the table is
still printed).`,
		Example: `  dockplan hosts
  dockplan hosts -json
  dockplan hosts -probe-timeout 3s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runHosts(cmd.Context(), opts, s) },
	}
	opts.vars.register(cmd.Flags())
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the hosts as JSON")
	cmd.Flags().DurationVar(&opts.probeTimeout, "probe-timeout", engine.DefaultTimeout, "a host that does not answer within this `DURATION` is unreachable")
	return cmd
}

func runHosts(ctx context.Context, opts *hostsOptions, s Streams) error {
	if opts.probeTimeout <= 0 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("-probe-timeout=%s must be more than zero, such as 10s", opts.probeTimeout)}
	}
	cfg, err := loadConfig(ctx, opts.global, opts.vars, s)
	if err != nil {
		return err
	}
	snap := probe.Probe(ctx, cfg, probe.Options{Timeout: opts.probeTimeout})
	if opts.json {
		err = render.HostsJSON(s.Out, snap)
	} else {
		err = render.HostsTable(s.Out, snap, render.TextOptions{Color: opts.global.color(s.OutIsTerminal)})
	}
	if err != nil {
		return err
	}
	if n := len(snap.Unreachable()); n > 0 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("%d of %d hosts did not answer", n, len(snap.Hosts))}
	}
	return nil
}

// loadConfig decodes the configuration in the working directory, printing
// its diagnostics (warnings too) on stderr.
func loadConfig(ctx context.Context, g *globalOptions, vars varFlags, s Streams) (*hclspec.Config, error) {
	cfg, files, diags := hclspec.Load(".", vars.loadOptions(ctx, s.Environ))
	if err := render.Diagnostics(s.Err, diags, files, render.TextOptions{Color: g.color(s.ErrIsTerminal)}); err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, exitWith(ExitError)
	}
	return cfg, nil
}

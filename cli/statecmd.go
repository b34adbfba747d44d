package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/state"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// stateOptions are the options the state commands share.
type stateOptions struct {
	statePath   string
	lockTimeout time.Duration
	// flags are the command's flags, to tell whether -state was given.
	flags *pflag.FlagSet
}

func (o *stateOptions) register(cmd *cobra.Command) {
	o.flags = cmd.Flags()
	cmd.Flags().StringVar(&o.statePath, "state", state.DefaultPath, "the state file `PATH`, instead of a file state block's path")
}

// open opens the state backend the configuration's state block and
// -state choose (see openBackend). Only the state block is read, so the
// state commands need no -var values.
func (o *stateOptions) open(s Streams) (*backend, error) {
	sc, err := loadStateBlock(s)
	if err != nil {
		return nil, err
	}
	return openBackend(sc, stateFlagOf(o.flags, o.statePath))
}

func newStateCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Read, edit and move the state",
		Long: `State lists, shows and forgets the instances dockplan manages, and moves the
state between a file and etcd. It reads only the state (where the
configuration's state block says, or the file -state names) and contacts no
host.`,
		Example: `  dockplan state list
  dockplan state show 'web[1]'
  dockplan state rm 'api[2]'
  dockplan state migrate -to=etcd -endpoints=https://10.0.0.5:2379 -prefix=dockplan/shop`,
	}
	cmd.AddCommand(newStateListCommand(s), newStateShowCommand(s), newStateRmCommand(s), newStateMigrateCommand(s))
	return cmd
}

// loadStateOf reads the state the options name; no state is an error.
func loadStateOf(ctx context.Context, opts *stateOptions, s Streams) (*state.State, error) {
	b, err := opts.open(s)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	st, err := b.Load(ctx)
	if err != nil {
		return nil, &exitError{code: ExitError, msg: err.Error()}
	}
	if st == nil {
		return nil, &exitError{code: ExitError, msg: noStateMessage(b)}
	}
	return st, nil
}

// noStateMessage says that b holds no state and what to check.
func noStateMessage(b *backend) string {
	if b.isEtcd() {
		return fmt.Sprintf("there is no state in %s: nothing was applied yet (or the prefix in the state block at %s is not this project's)", b.where, b.block.Where())
	}
	return fmt.Sprintf("there is no state at %s: nothing was applied yet (or point -state at it)", b.where)
}

func newStateListCommand(s Streams) *cobra.Command {
	opts := &stateOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the managed instances",
		Example: "  dockplan state list\n  dockplan state list -state prod.state.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadStateOf(cmd.Context(), opts, s)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(s.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tHOST\tCONTAINER\tID\tIMAGE")
			for _, addr := range st.Addresses() {
				i := st.Instances[addr]
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", addr, i.Host, i.Name, shortID(i.ContainerID), i.Spec.Image)
			}
			return tw.Flush()
		},
	}
	opts.register(cmd)
	return cmd
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func newStateShowCommand(s Streams) *cobra.Command {
	opts := &stateOptions{}
	cmd := &cobra.Command{
		Use:     "show ADDRESS",
		Short:   "Show one managed instance (sensitive values hidden)",
		Example: "  dockplan state show db\n  dockplan state show 'web[1]'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := loadStateOf(cmd.Context(), opts, s)
			if err != nil {
				return err
			}
			i := st.Instances[args[0]]
			if i == nil {
				return &exitError{code: ExitError, msg: fmt.Sprintf("the state has no instance %q; dockplan state list shows the addresses", args[0])}
			}
			showInstance(s, i)
			return nil
		},
	}
	opts.register(cmd)
	return cmd
}

// showInstance prints a state record, with every sensitive value hidden.
func showInstance(s Streams, i *state.Instance) {
	sensitive := map[string]bool{}
	for _, p := range i.Sensitive {
		sensitive[p] = true
	}
	hide := func(path, v string) string {
		top, _, _ := strings.Cut(path, ".")
		if sensitive[path] || sensitive[top] {
			return "(sensitive value)"
		}
		return fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(s.Out, "# %s\ncontainer %q {\n", i.Address, i.Address)
	rows := [][2]string{{"host", fmt.Sprintf("%q", i.Host)}, {"name", fmt.Sprintf("%q", i.Name)},
		{"id", fmt.Sprintf("%q", i.ContainerID)}, {"image", fmt.Sprintf("%q", i.Spec.Image)},
		{"image_id", fmt.Sprintf("%q", i.ImageID)}, {"config_hash", fmt.Sprintf("%q", i.ConfigHash)}}
	if i.Spec.Cmd != nil {
		rows = append(rows, [2]string{"command", hide("command", strings.Join(i.Spec.Cmd, " "))})
	}
	env := append([]string{}, i.Spec.Env...)
	sort.Strings(env)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		rows = append(rows, [2]string{"env." + k, hide("env."+k, v)})
	}
	for _, p := range i.Ports {
		rows = append(rows, [2]string{fmt.Sprintf("port %d/%s", p.ContainerPort, p.Protocol), fmt.Sprintf("%q", fmt.Sprintf("%s:%d", p.HostIP, p.HostPort))})
	}
	rows = append(rows, [2]string{"cpu", fmt.Sprintf("%q", hclspec.FormatMilliCPU(i.Spec.Resources.MilliCPUs()))},
		[2]string{"memory", fmt.Sprintf("%q", hclspec.FormatBytes(i.Spec.Resources.MemoryBytes()))},
		[2]string{"restart", fmt.Sprintf("%q", i.Spec.Restart.Name)})
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		fmt.Fprintf(s.Out, "  %-*s = %s\n", width, r[0], r[1])
	}
	fmt.Fprintln(s.Out, "}")
}

func newStateRmCommand(s Streams) *cobra.Command {
	opts := &stateOptions{}
	cmd := &cobra.Command{
		Use:   "rm ADDRESS...",
		Short: "Forget instances without touching their containers",
		Long: `State rm removes instances from the state. Their containers keep running,
untouched; the next plan finds them by their labels and adopts them (when
they match the configuration) or removes them (when no configuration
declares them).`,
		Example: "  dockplan state rm 'api[2]'\n  dockplan state rm db 'web[0]'",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStateRm(cmd.Context(), opts, args, s)
		},
	}
	opts.register(cmd)
	cmd.Flags().DurationVar(&opts.lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for the state lock")
	return cmd
}

func runStateRm(ctx context.Context, opts *stateOptions, addrs []string, s Streams) error {
	b, err := opts.open(s)
	if err != nil {
		return err
	}
	defer b.Close()
	id, err := b.lock(ctx, "state rm", opts.lockTimeout, s.Err)
	if err != nil {
		return &exitError{code: ExitError, msg: err.Error()}
	}
	defer b.Unlock(context.WithoutCancel(ctx), id)
	st, err := b.Load(ctx)
	switch {
	case err != nil:
		return &exitError{code: ExitError, msg: fmt.Sprintf("cannot read the state %s: %v", b.where, err)}
	case st == nil:
		return &exitError{code: ExitError, msg: noStateMessage(b)}
	}
	for _, a := range addrs {
		if st.Instances[a] == nil {
			return &exitError{code: ExitError, msg: fmt.Sprintf("the state has no instance %q; nothing was removed", a)}
		}
	}
	for _, a := range addrs {
		delete(st.Instances, a)
	}
	st.Serial++
	if err := b.Save(ctx, st); err != nil {
		return &exitError{code: ExitError, msg: err.Error()}
	}
	fmt.Fprintf(s.Out, "Removed %d instance(s) from the state: %s. Their containers were not touched.\n", len(addrs), strings.Join(addrs, ", "))
	return nil
}

func newForceUnlockCommand(s Streams) *cobra.Command {
	opts := &stateOptions{}
	cmd := &cobra.Command{
		Use:   "force-unlock LOCK_ID",
		Short: "Break a state lock whose holder is gone",
		Long: `Force-unlock breaks the state lock with the given ID, for a holder that
died or hangs. The ID is in the message of the command that found the lock
held. A holder that is still alive cannot save the state afterwards.`,
		Example: "  dockplan force-unlock 6f1c2a3b-…",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := opts.open(s)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := b.ForceUnlock(cmd.Context(), args[0]); err != nil {
				return &exitError{code: ExitError, msg: err.Error()}
			}
			fmt.Fprintln(s.Out, "The state lock was broken. Make sure its holder is no longer running.")
			return nil
		},
	}
	opts.register(cmd)
	return cmd
}

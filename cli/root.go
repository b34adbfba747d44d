package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Streams are the standard streams a command uses.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// OutIsTerminal says whether Out is a terminal (colour, widths).
	OutIsTerminal bool
	// ErrIsTerminal says whether Err is a terminal.
	ErrIsTerminal bool
	// Environ is the environment (NAME=value).
	Environ []string
}

// globalOptions are the flags every command takes.
type globalOptions struct {
	chdir   string
	noColor bool
}

// Main runs dockplan with the process's arguments and streams and returns
// the exit code.
func Main() int {
	// A closed stdout (dockplan apply | head) must not kill an apply
	// between creating a container and recording it: writes fail instead,
	// and the apply goes on to save the state.
	signal.Ignore(syscall.SIGPIPE)
	return Run(os.Args[1:], Streams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		OutIsTerminal: isTerminal(os.Stdout), ErrIsTerminal: isTerminal(os.Stderr),
		Environ: os.Environ(),
	})
}

// Run runs dockplan with args and returns the exit code.
func Run(args []string, s Streams) int {
	g := &globalOptions{}
	root := newRootCommand(g, s)
	root.SetArgs(normalizeArgs(root, args))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	var handled *exitError
	if errors.As(err, &handled) && handled.code == ExitOK {
		return ExitOK // a command that finished cleanly after a signal
	}
	if ctx.Err() != nil {
		fmt.Fprintln(s.Err, "Interrupted.")
		return ExitInterrupted
	}
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.msg != "" {
		fmt.Fprintf(s.Err, "Error: %s\n", err)
		if !errors.As(err, &ee) {
			fmt.Fprintf(s.Err, "Run 'dockplan --help' for usage.\n")
		}
	}
	return exitCode(err)
}

func newRootCommand(g *globalOptions, s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "dockplan",
		Short: "Plan and apply Docker containers across several hosts",
		Long: `dockplan runs Docker containers on several Docker hosts without a cluster.
Describe hosts and containers in *.dockplan.hcl files; dockplan checks them,
places each container where resources are free, and keeps them running.`,
		Example: `  dockplan validate
  dockplan -chdir=examples/three-tier validate -var api_replicas=2
  dockplan fmt -check -recursive`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.chdir == "" {
				return nil
			}
			if err := os.Chdir(g.chdir); err != nil {
				return &exitError{code: ExitError, msg: fmt.Sprintf("-chdir=%s: %v; give a directory that exists", g.chdir, unwrapPathError(err))}
			}
			return nil
		},
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.PersistentFlags().StringVar(&g.chdir, "chdir", "", "switch to `DIR` before running the command")
	root.PersistentFlags().BoolVar(&g.noColor, "no-color", false, "print without colours")
	root.PersistentFlags().BoolP("help", "h", false, "help for the command")
	root.AddCommand(
		newValidateCommand(g, s),
		newHostsCommand(g, s),
		newPlanCommand(g, s),
		newShowCommand(g, s),
		newApplyCommand(g, s),
		newDestroyCommand(g, s),
		newOutputCommand(g, s),
		newReconcileCommand(g, s),
		newStateCommand(s),
		newForceUnlockCommand(s),
		newFmtCommand(s),
		newVersionCommand(s),
		newCompletionCommand(s),
	)
	return root
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// color says whether output to a stream may use colours.
func (g *globalOptions) color(terminal bool) bool { return terminal && !g.noColor }

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

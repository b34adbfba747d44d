package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

const usage = `usage: go run ./lab COMMAND [ARGS]

  up [-no-image] [N]     start N lab hosts (default 3), the registry and the test image
  down                   remove everything the lab made
  status                 show the hosts, their state and memory
  env [-json]            hosts as shell variables (eval "$(go run ./lab env)"), or the state as JSON
  hcl                    dockplan host blocks for every lab host
  partition HOST         drop all traffic of HOST's lab link (its unix socket still answers)
  heal HOST              undo partition
  kill [-power] HOST     SIGKILL HOST's dockerd; -power also its containerd, shims and containers
  revive HOST            start HOST's dockerd again
  load IMAGE             copy IMAGE from the default engine to every host and the lab registry
  image [-force]         build the test image ` + labenv.TestImage + ` into the default engine

HOST is host2, 2 or lab-host2. Needs root.
`

// errUsage marks a command line that makes no sense; main exits 2.
var errUsage = errors.New("bad usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "lab: %v\n\n%s", err, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "lab: %v\n", err)
		os.Exit(1)
	}
}

// run dispatches one command.
func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(out, usage)
		return nil
	case "env":
		return runEnv(rest, out)
	case "hcl":
		return runHCL(out)
	}
	handlers := map[string]func() error{
		"up":        func() error { return runUp(ctx, rest, out) },
		"down":      func() error { return runDown(ctx, out) },
		"status":    func() error { return runStatus(ctx, out) },
		"partition": func() error { return runFault(ctx, cmd, rest, out) },
		"heal":      func() error { return runFault(ctx, cmd, rest, out) },
		"kill":      func() error { return runFault(ctx, cmd, rest, out) },
		"revive":    func() error { return runFault(ctx, cmd, rest, out) },
		"load":      func() error { return runLoad(ctx, rest, out) },
		"image":     func() error { return runImage(ctx, rest, out) },
	}
	handler, ok := handlers[cmd]
	if !ok {
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab %s needs root (network namespaces, dockerd): run it as root", cmd)
	}
	return handler()
}

// parseFlags parses fs from args, allowing flags after positional
// arguments, and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var flags, positional []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
		} else {
			positional = append(positional, a)
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return positional, nil
}

// withLock runs fn holding the lab's lock, so two ups or an up and a down
// never interleave.
func withLock(fn func() error) error {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return fn()
}

func runUp(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	noImage := fs.Bool("no-image", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	opts := upOptions{hosts: 3, noImage: *noImage}
	if len(pos) > 1 {
		return fmt.Errorf("%w: up takes one number", errUsage)
	}
	if len(pos) == 1 {
		n, err := strconv.Atoi(pos[0])
		if err != nil || n < 1 || n > maxHosts {
			return fmt.Errorf("%w: up N needs 1 <= N <= %d, got %q", errUsage, maxHosts, pos[0])
		}
		opts.hosts = n
	}
	start := time.Now()
	if err := withLock(func() error { return up(ctx, opts) }); err != nil {
		return fmt.Errorf("up: %w (see `go run ./lab status`; `go run ./lab down` removes what was made)", err)
	}
	fmt.Fprintf(out, "lab up: %d hosts, registry %s, in %.2fs\n", opts.hosts, registryAt, time.Since(start).Seconds())
	return runStatus(ctx, out)
}

func runDown(ctx context.Context, out io.Writer) error {
	start := time.Now()
	if err := withLock(func() error { return down(ctx) }); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	if left := leftovers(); len(left) > 0 {
		return fmt.Errorf("down left behind: %s", strings.Join(left, "; "))
	}
	fmt.Fprintf(out, "lab down in %.2fs\n", time.Since(start).Seconds())
	return nil
}

func runFault(ctx context.Context, cmd string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	power := fs.Bool("power", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: %s takes one HOST", errUsage, cmd)
	}
	lab, err := labenv.LoadFile(labenv.DefaultStateFile)
	if err != nil {
		return fmt.Errorf("%w: run `%s` first", err, labenv.UpCommand)
	}
	switch cmd {
	case "partition":
		err = lab.Partition(ctx, pos[0])
	case "heal":
		err = lab.Heal(ctx, pos[0])
	case "kill":
		err = lab.Kill(ctx, pos[0], *power)
	case "revive":
		err = lab.Revive(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s %s: done\n", cmd, pos[0])
	return nil
}

func runLoad(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: load takes one IMAGE", errUsage)
	}
	lab, err := labenv.LoadFile(labenv.DefaultStateFile)
	if err != nil {
		return fmt.Errorf("%w: run `%s` first", err, labenv.UpCommand)
	}
	if err := distributeImage(ctx, lab, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s loaded into %d hosts and pushed as %s\n", args[0], len(lab.Hosts), registryRef(args[0]))
	return nil
}

func runImage(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	force := fs.Bool("force", false, "")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		return fmt.Errorf("%w: image takes only -force", errUsage)
	}
	def, err := labenv.DefaultClient()
	if err != nil {
		return err
	}
	defer def.Close()
	if *force {
		err = labenv.BuildTestImage(ctx, def)
	} else {
		err = labenv.EnsureTestImageOn(ctx, def)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is in %s\n", labenv.TestImage, def.Endpoint())
	return nil
}

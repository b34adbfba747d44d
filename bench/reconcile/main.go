// Command reconcile measures `dockplan reconcile -daemon` on the test lab
// for docs/benchmarks.md ("Reconcile"), next to what Docker itself does.
//
//	go run ./bench/reconcile [-trials 20]            how fast a stopped container runs again
//	go run ./bench/reconcile -mode idle [-n 300]     the daemon's idle memory and CPU
//
// -mode restart (the default) times, over -trials trials each, the way
// from a container going down to the engine's `start` event of the
// container that replaces it:
//
//   - dockplan reconcile -daemon, after `docker stop`, after a crash (the
//     test program exits 1 through its /crash endpoint) and after
//     `docker rm -f` (re-created from the state). Every trial takes down
//     another instance, so the daemon's crash-loop backoff (10 s after a
//     second repair of one instance) never comes into play;
//   - a floor: the program stops a container and starts it itself on the
//     engine's die event, the least any restarter outside the engine needs;
//   - the engine's own restart policy `always`, after a crash, and after
//     `docker stop` (which it never undoes: the program waits 10 s and
//     counts the restarts);
//   - a Swarm service's replacement task, after `docker stop` of the task's
//     container, with the default restart delay and with a delay of 0. It
//     runs `docker swarm init` on one lab host (-swarm-host, which must not
//     be in a swarm), and `docker swarm leave --force` at the end, removing
//     the networks the swarm added.
//
// -mode idle applies -n small containers (0.01 CPU, 16 MiB, the test
// image) across the lab's hosts, runs the daemon with its default interval
// until it has listed them all, waits -settle, and then reads the daemon's
// /proc/PID/status VmRSS every second and its utime+stime from
// /proc/PID/stat at the start and end of -idle.
//
// It builds dockplan from the repository into a temporary folder (or uses
// -dockplan PATH), uses the
// test image dockplan-testapp:dev already on every lab host (nothing is
// pulled), holds the lab's test lock exclusively while it runs (it waits
// for running lab tests, and fault tests wait for it), and removes every
// container, service and project it made, also when interrupted.
// -keep leaves that folder, with each project's daemon.log. Progress goes
// to stderr, the table to stdout, with the load average at the start and
// the end (the machine is shared).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/client"
	"github.com/dockplan/dockplan/lab/labenv"
)

// options are the command line.
type options struct {
	mode      string
	trials    int
	n         int
	idle      time.Duration
	settle    time.Duration
	swarmHost string
	skipSwarm bool
	// bin is a dockplan binary to use instead of building one.
	bin string
	// keep leaves the temporary folder (the projects' daemon.log files).
	keep bool
}

// bench is one run's working set.
type bench struct {
	opts options
	lab  *labenv.Lab
	// tmp holds the dockplan binary and the projects' folders.
	tmp string
	bin string
	// run names this run's projects, containers and services.
	run string
	// clients reach every lab host through its unix socket, by host name.
	clients map[string]*client.Client
	// cleanups run in reverse order at the end, also after an interrupt.
	cleanups []func(context.Context)
}

func main() {
	opts := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile bench:", err)
		os.Exit(1)
	}
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.mode, "mode", "restart", "`MODE`: restart (time to running again) or idle (the daemon's idle RSS and CPU)")
	flag.IntVar(&o.trials, "trials", 20, "restart: trials per row")
	flag.IntVar(&o.n, "n", 300, "idle: managed containers across the lab hosts")
	flag.DurationVar(&o.idle, "idle", 120*time.Second, "idle: how long to measure")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "idle: wait after the daemon listed every host before measuring")
	flag.StringVar(&o.swarmHost, "swarm-host", "host3", "restart: the lab host that runs a one-node swarm for the comparison")
	flag.BoolVar(&o.skipSwarm, "skip-swarm", false, "restart: leave Swarm out")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder with the daemon's logs (daemon.log in each project's folder)")
	flag.StringVar(&o.bin, "dockplan", "", "use the dockplan binary at `PATH` instead of building one from the repository")
	flag.Parse()
	if (o.mode != "restart" && o.mode != "idle") || o.trials < 1 || o.n < 1 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	return o
}

func run(ctx context.Context, opts options) (err error) {
	lab, err := labenv.Load()
	if err != nil {
		return fmt.Errorf("%w; bring the lab up with `%s`", err, labenv.UpCommand)
	}
	progress("waiting for the lab's exclusive test lock")
	release, err := labenv.LockExclusive()
	if err != nil {
		return err
	}
	defer release()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = lab.Check(cctx)
	cancel()
	if err != nil {
		return err
	}
	b := &bench{opts: opts, lab: lab, run: fmt.Sprintf("rcb%d", time.Now().UnixNano()%1_000_000), clients: map[string]*client.Client{}}
	defer b.cleanup()
	if b.tmp, err = os.MkdirTemp("", "dockplan-reconcile-bench-"); err != nil {
		return err
	}
	b.defer_(func(context.Context) {
		if opts.keep {
			progress("kept %s", b.tmp)
			return
		}
		_ = os.RemoveAll(b.tmp)
	})
	for _, h := range lab.Hosts {
		cli, err := client.NewClientWithOpts(client.WithHost(h.Socket), client.WithAPIVersionNegotiation())
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		b.clients[h.Name] = cli
		b.defer_(func(context.Context) { _ = cli.Close() })
	}
	if err := b.build(ctx); err != nil {
		return err
	}
	b.header(ctx)
	if opts.mode == "idle" {
		err = b.idleMode(ctx)
	} else {
		err = b.restartMode(ctx)
	}
	fmt.Printf("load average at the end %s\n", loadAverage())
	return err
}

// defer_ registers a cleanup, run in reverse order by cleanup.
func (b *bench) defer_(f func(context.Context)) { b.cleanups = append(b.cleanups, f) }

// cleanup runs the cleanups with a fresh context, so that they also run
// after an interrupt.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, f := range slices.Backward(b.cleanups) {
		f(ctx)
	}
}

// build compiles dockplan from the repository into b.tmp, unless
// -dockplan names a binary.
func (b *bench) build(ctx context.Context) error {
	if b.opts.bin != "" {
		var err error
		b.bin, err = filepath.Abs(b.opts.bin)
		return err
	}
	root, err := labenv.ModuleRoot()
	if err != nil {
		return err
	}
	b.bin = filepath.Join(b.tmp, "dockplan")
	progress("building dockplan")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// header prints what was measured on.
func (b *bench) header(ctx context.Context) {
	engineVersion := "?"
	if info, err := b.clients[b.lab.Hosts[0].Name].Info(ctx); err == nil {
		engineVersion = fmt.Sprintf("Docker %s, %d CPUs, %d MiB", info.ServerVersion, info.NCPU, info.MemTotal>>20)
	}
	rev := "?"
	if out, err := exec.Command(b.bin, "version").Output(); err == nil {
		rev = strings.TrimSpace(string(out))
	}
	if root, err := labenv.ModuleRoot(); err == nil && b.opts.bin == "" {
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			rev = strings.TrimSpace(string(out))
		}
		if out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
			rev += " (working tree with changes)"
		}
	}
	fmt.Printf("dockplan %s; %d lab hosts; %s; run %s; load average at start %s\n\n", rev, len(b.lab.Hosts), engineVersion, b.run, loadAverage())
}

// loadAverage returns the machine's 1, 5 and 15 minute load averages:
// the machine is shared, and every figure depends on how busy it was.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// progress logs a line on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// row is one line of the restart table.
type row struct {
	what   string
	trials []trial
	// note replaces the figures when there are none (never restarted).
	note string
	// extra is appended to the row's notes.
	extra string
}

// printRows prints the restart table.
func printRows(rows []row) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "what\ttrials\tmedian\tworst\tbest\tmedian from die\tworst from die\tnotes")
	for _, r := range rows {
		if len(r.trials) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\t%s\n", r.what, r.note)
			continue
		}
		var call, die []time.Duration
		for _, t := range r.trials {
			call = append(call, t.fromCall)
			die = append(die, t.fromDie)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.what, len(r.trials),
			secs(median(call)), secs(slices.Max(call)), secs(slices.Min(call)), secs(median(die)), secs(slices.Max(die)), r.extra)
	}
	_ = w.Flush()
	fmt.Println()
	fmt.Println("median, worst, best: from just before the API call that took the container down (docker stop, the /crash request,")
	fmt.Println("docker rm -f) to the engine's start event of the container that runs again; from die: from the engine's die event.")
}

// median returns the median of ds (the mean of the middle two for an even
// count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// errTimeout is a wait that ran out.
var errTimeout = errors.New("timed out")

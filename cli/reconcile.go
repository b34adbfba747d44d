package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
	"github.com/dockplan/dockplan/reconcile"
	"github.com/dockplan/dockplan/state"
	"github.com/spf13/cobra"
)

// reconcileOptions are the options of `dockplan reconcile`.
type reconcileOptions struct {
	global       *globalOptions
	vars         varFlags
	statePath    string
	daemon       bool
	interval     time.Duration
	listen       string
	logFormat    string
	lockTimeout  time.Duration
	probeTimeout time.Duration
	// rescheduleAfter is -reschedule-after; zero is off.
	rescheduleAfter time.Duration
	// leader is -leader-ttl, for -daemon with the etcd backend (leader.go).
	leader leaderOptions
}

func newReconcileCommand(g *globalOptions, s Streams) *cobra.Command {
	opts := &reconcileOptions{global: g}
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Start, re-create or restart what the state records but is not running",
		Long: `Reconcile keeps the containers recorded in the state running: it starts
stopped ones, re-creates missing ones (same name, labels and configuration,
from the state, not from the configuration files) and restarts those whose
declared health check reports them unhealthy.

The state is the source of truth. From the configuration reconcile reads only
the project and the host blocks, to know how to reach each host (so the
directory needs the *.dockplan.hcl files, or just a file with project and
the host blocks, plus the -var values they use).

Without -daemon it makes one pass and exits: for cron or a systemd timer.
With -daemon it follows every host's events, acts at once when a container
dies, stops, is removed or turns unhealthy, lists every host again every
-interval, backs off per instance when a container keeps failing (10s
doubling up to 5m, reset after 10m), and stops cleanly on SIGTERM or SIGINT
(the repair in flight finishes and the state lock is released). -listen
serves /metrics (Prometheus) and /healthz. A host that does not answer is
reported and its instances are left alone; with -reschedule-after they move
to hosts that answer once it has been down that long (planned and applied
as apply would, from the configuration in this directory), and the copies
it still runs are removed when it returns. See docs/reconcile.md.

Exit status: 0 when everything was running, 2 when reconcile repaired
something, 1 on errors (a host that did not answer, a failed repair).
The daemon exits 0 when stopped by a signal.`,
		Example: `  dockplan reconcile
  dockplan reconcile -daemon -listen 127.0.0.1:9464 -log-format json
  dockplan -chdir=/etc/dockplan/shop reconcile -daemon -interval 1m -reschedule-after 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runReconcile(cmd.Context(), opts, s)
			if err == nil && opts.daemon && cmd.Context().Err() != nil {
				// A daemon stopped by SIGTERM or SIGINT has done what was
				// asked of it (the repair in flight finished, the lock is
				// released, everything is closed): it exits 0, as service
				// managers expect, not 130 (see Run).
				return exitWith(ExitOK)
			}
			return err
		},
	}
	f := cmd.Flags()
	opts.vars.register(f)
	f.StringVar(&opts.statePath, "state", state.DefaultPath, "the state file `PATH`")
	f.BoolVar(&opts.daemon, "daemon", false, "keep running: follow the hosts' events and resync every -interval")
	f.DurationVar(&opts.interval, "interval", reconcile.DefaultInterval, "with -daemon, list every host again every `DURATION`")
	f.StringVar(&opts.listen, "listen", "", "with -daemon, serve /metrics and /healthz on `ADDR` (host:port; port 0 picks one, logged)")
	f.StringVar(&opts.logFormat, "log-format", "text", "log lines on stderr as `FORMAT`: text or json")
	f.DurationVar(&opts.lockTimeout, "lock-timeout", reconcile.DefaultLockTimeout, "without -daemon, wait up to `DURATION` for a state lock another dockplan holds (the daemon waits as long as it runs)")
	f.DurationVar(&opts.probeTimeout, "probe-timeout", engine.DefaultTimeout, "a host that does not answer within this `DURATION` is unreachable")
	f.DurationVar(&opts.rescheduleAfter, "reschedule-after", 0, "with -daemon, move the instances of a host that has not answered for `DURATION` to other hosts, and remove its stale copies when it answers again (0, the default, leaves them alone)")
	opts.leader.register(f)
	return cmd
}

func (o *reconcileOptions) check() error {
	switch {
	case o.logFormat != "text" && o.logFormat != "json":
		return fmt.Errorf("-log-format=%s is not a format; use text or json", o.logFormat)
	case o.interval <= 0 || o.probeTimeout <= 0 || o.lockTimeout <= 0:
		return errors.New("-interval, -probe-timeout and -lock-timeout must be more than zero")
	case o.listen != "" && !o.daemon:
		return errors.New("-listen serves the daemon's metrics: use it with -daemon")
	case o.rescheduleAfter < 0:
		return errors.New("-reschedule-after must not be negative (0 turns it off)")
	case o.rescheduleAfter > 0 && !o.daemon:
		return errors.New("-reschedule-after is for the daemon, which watches how long a host stays down: use it with -daemon")
	case o.rescheduleAfter > 0 && o.rescheduleAfter < time.Second:
		return fmt.Errorf("-reschedule-after=%s is too short: a host that misses one heartbeat would lose its instances; use 1s or more", o.rescheduleAfter)
	}
	return nil
}

func runReconcile(ctx context.Context, opts *reconcileOptions, s Streams) error {
	if err := opts.check(); err != nil {
		return &exitError{code: ExitError, msg: err.Error()}
	}
	cfg, err := loadConfig(ctx, opts.global, opts.vars, s)
	if err != nil {
		return err
	}
	logger := newLogger(opts.logFormat, s)
	book := &hostBook{endpoints: hostEndpoints(cfg, opts.probeTimeout), reload: func() (map[string]engine.Endpoint, error) {
		cfg, _, diags := hclspec.Load(".", opts.vars.loadOptions(ctx, s.Environ))
		if diags.HasErrors() {
			return nil, diags
		}
		return hostEndpoints(cfg, opts.probeTimeout), nil
	}}
	info := state.NewLockInfo("reconcile")
	info.Version = Version
	var metrics *reconcile.Metrics
	if opts.daemon {
		metrics = reconcile.NewMetrics()
	}
	stateBackend, err := opts.leader.open(cfg, opts.statePath, opts.daemon)
	if err != nil {
		return err
	}
	defer stateBackend.Close()
	ropts := reconcile.Options{
		Backend: stateBackend, Dial: book.dial, Project: cfg.Project,
		Logger: logger, Metrics: metrics, Interval: opts.interval, LockTimeout: opts.lockTimeout, LockInfo: info,
	}
	if opts.rescheduleAfter > 0 {
		rs := &rescheduler{opts: opts, s: s, backend: stateBackend, log: logger}
		ropts.RescheduleAfter, ropts.Reschedule = opts.rescheduleAfter, rs.reschedule
		for _, h := range cfg.Hosts {
			ropts.Hosts = append(ropts.Hosts, h.Name)
		}
	}
	r, err := reconcile.New(ropts)
	if err != nil {
		return err
	}
	defer r.Close()
	if opts.daemon {
		return runReconcileDaemon(ctx, opts, opts.leader.elect(stateBackend, r, metrics, logger), logger)
	}
	res, err := r.Once(ctx)
	if err != nil {
		return reconcileLoadError(err, stateBackend.where)
	}
	return reportOnce(res, s)
}

// newLogger returns the slog logger of -log-format, writing to stderr.
func newLogger(format string, s Streams) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(s.Err, nil))
	}
	return slog.New(slog.NewTextHandler(s.Err, nil))
}

// hostEndpoints maps every host block to its engine endpoint.
func hostEndpoints(cfg *hclspec.Config, timeout time.Duration) map[string]engine.Endpoint {
	out := map[string]engine.Endpoint{}
	for _, h := range cfg.Hosts {
		out[h.Name] = probe.Endpoint(h, timeout)
	}
	return out
}

// hostBook dials host blocks by name. The state records only host names;
// their endpoints come from the configuration, which is read again when
// the state names a host it did not have (a host added since).
type hostBook struct {
	mu        sync.Mutex
	endpoints map[string]engine.Endpoint
	reload    func() (map[string]engine.Endpoint, error)
}

func (b *hostBook) dial(ctx context.Context, name string) (engine.Engine, error) {
	b.mu.Lock()
	ep, ok := b.endpoints[name]
	if !ok {
		if eps, err := b.reload(); err == nil {
			b.endpoints = eps
			ep, ok = eps[name]
		}
	}
	b.mu.Unlock()
	if !ok {
		return nil, engine.NewError(name, "connect to", "", engine.ErrInvalidEndpoint,
			errors.New("the configuration has no host block of this name, but the state places instances there; add the host block back (reconcile reads only hosts from the configuration)"))
	}
	return engine.Dial(ctx, ep)
}

func reconcileLoadError(err error, statePath string) error {
	if errors.Is(err, reconcile.ErrNoState) {
		return &exitError{code: ExitError, msg: fmt.Sprintf("there is no state at %s: nothing was applied yet (or point -state at it)", statePath)}
	}
	return &exitError{code: ExitError, msg: err.Error()}
}

// reportOnce prints one line per repair and a summary on stdout, and the
// problems on stderr; it returns the exit code as an error.
func reportOnce(res *reconcile.Result, s Streams) error {
	counts := map[reconcile.ActionKind]int{}
	for _, a := range res.Actions {
		if a.Err != nil {
			fmt.Fprintf(s.Out, "%s: %s failed [%s]: %v\n", a.Address, a.Kind, a.Host, a.Err)
			continue
		}
		counts[a.Kind]++
		fmt.Fprintf(s.Out, "%s: %s after %s [%s]\n", a.Address, pastTense(a.Kind), a.Duration.Round(100*time.Millisecond), a.Host)
	}
	var problems []string
	for _, h := range res.Unreachable {
		problems = append(problems, fmt.Sprintf("host %s did not answer, so its %s left alone: %v", h.Host, instanceCount(h.Instances, "was", "were"), h.Err))
	}
	for _, err := range res.Errors {
		problems = append(problems, err.Error())
	}
	if n := res.Failed(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d %s failed (see above)", n, map[bool]string{true: "repair", false: "repairs"}[n == 1]))
	}
	if len(res.Actions) == 0 && len(problems) == 0 {
		fmt.Fprintf(s.Out, "All %s running.\n", instanceCount(res.Instances, "is", "are"))
		return nil
	}
	status := "complete"
	if len(problems) > 0 {
		status = "incomplete"
	}
	fmt.Fprintf(s.Out, "\nReconcile %s: %d started, %d re-created, %d restarted; %d of %s running.\n", status,
		counts[reconcile.ActionStart], counts[reconcile.ActionRecreate], counts[reconcile.ActionRestart],
		res.Running, instanceCount(res.Instances, "was", "were"))
	if len(problems) > 0 {
		return &exitError{code: ExitError, msg: strings.Join(problems, "\n")}
	}
	return exitWith(ExitChanges)
}

// instanceCount words n instances with the verb that agrees ("1 instance
// was", "2 instances were").
func instanceCount(n int, one, many string) string {
	if n == 1 {
		return "1 instance " + one
	}
	return fmt.Sprintf("%d instances %s", n, many)
}

func pastTense(k reconcile.ActionKind) string {
	switch k {
	case reconcile.ActionStart:
		return "Started"
	case reconcile.ActionRecreate:
		return "Re-created"
	}
	return "Restarted"
}

// runReconcileDaemon serves -listen and runs the daemon until ctx ends.
func runReconcileDaemon(ctx context.Context, opts *reconcileOptions, r daemonRunner, logger *slog.Logger) error {
	if opts.listen != "" {
		ln, err := net.Listen("tcp", metricsListenAddress(opts.listen))
		if err != nil {
			return &exitError{code: ExitError, msg: fmt.Sprintf("-listen=%s: %v", opts.listen, err)}
		}
		srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
		logger.Info("serving /metrics and /healthz", "listen", ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("the metrics server stopped", "error", err.Error())
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	if err := r.Run(ctx); err != nil {
		return reconcileLoadError(err, opts.statePath)
	}
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/reconcile"
	"github.com/dockplan/dockplan/state/etcdstate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// With the etcd state backend, several `reconcile -daemon` processes (on
// different machines) may run for one project: they campaign in an etcd
// election under the state's prefix, only the leader runs the reconciler,
// and the others stand by. A leader that dies or loses etcd stops renewing
// its session lease; etcd deletes its election key when the lease expires,
// and the next candidate leads. The reconcile package knows nothing of
// this: it is given a context that ends when leadership does.

// Leader election defaults and bounds.
const (
	// defaultLeaderTTL is the election session's lease TTL: how long a
	// dead leader keeps the others waiting.
	defaultLeaderTTL = 5 * time.Second
	// minLeaderTTL: etcd refuses shorter leases with its default election
	// timeout (it raises them to 1.5 × the election timeout).
	minLeaderTTL = 2 * time.Second
	maxLeaderTTL = 5 * time.Minute
	// electionSuffix is the election's key prefix under the state prefix.
	electionSuffix = "/reconcile-leader"
	// leaderMetric is 1 while this process leads.
	leaderMetric = "dockplan_reconcile_leader"
)

// leaderOptions are reconcile's flags for the leader election of -daemon
// with the etcd backend, and the command's flags (to tell which were
// given).
type leaderOptions struct {
	ttl   time.Duration
	flags *pflag.FlagSet
}

// register adds -leader-ttl to the reconcile command's flags.
func (o *leaderOptions) register(f *pflag.FlagSet) {
	o.flags = f
	f.DurationVar(&o.ttl, "leader-ttl", defaultLeaderTTL, "with -daemon and the etcd state backend: a leader silent for this `DURATION` (dead, or cut off from etcd) is replaced")
}

// open opens reconcile's state backend (see openBackend) and checks
// -leader-ttl against it.
func (o *leaderOptions) open(cfg *hclspec.Config, statePath string, daemon bool) (*backend, error) {
	given := o.flags != nil && o.flags.Changed("leader-ttl")
	isEtcd := cfg.State != nil && cfg.State.Backend == hclspec.StateEtcd
	switch {
	case given && (!daemon || !isEtcd):
		return nil, &exitError{code: ExitError, msg: "-leader-ttl sets the leader election of several reconcile -daemon processes, which needs the etcd state backend (a state block with backend = \"etcd\"); use it with -daemon and such a configuration, or remove it"}
	case o.ttl < minLeaderTTL || o.ttl > maxLeaderTTL:
		return nil, &exitError{code: ExitError, msg: fmt.Sprintf("-leader-ttl=%s must be from %s to %s", o.ttl, minLeaderTTL, maxLeaderTTL)}
	case o.ttl%time.Second != 0:
		return nil, &exitError{code: ExitError, msg: fmt.Sprintf("-leader-ttl=%s: etcd counts lease TTLs in whole seconds; give %s or %s", o.ttl, o.ttl.Truncate(time.Second), o.ttl.Truncate(time.Second)+time.Second)}
	}
	var flag stateFlag
	if o.flags != nil {
		flag = stateFlagOf(o.flags, statePath)
	} else {
		flag = stateFlag{path: statePath}
	}
	return openBackend(cfg.State, flag)
}

// daemonRunner is what runReconcileDaemon runs and serves: the reconciler
// itself, or the reconciler behind a leader election.
type daemonRunner interface {
	Run(ctx context.Context) error
	Handler() http.Handler
}

// elect returns the daemon to run on b: r itself with a file backend, or r
// behind the leader election with etcd. metrics gets the leader gauge.
func (o *leaderOptions) elect(b *backend, r *reconcile.Reconciler, metrics *reconcile.Metrics, logger *slog.Logger) daemonRunner {
	if !b.isEtcd() {
		return r
	}
	d := newLeaderDaemon(b.etcd, r, o.ttl, logger)
	if metrics != nil {
		metrics.Registry().MustRegister(d.gauge)
	}
	return d
}

// role is what this process is in the election.
type role int

const (
	// roleFollower stands by: campaigning, not acting.
	roleFollower role = iota
	// roleLeader runs the reconciler.
	roleLeader
)

func (r role) String() string {
	if r == roleLeader {
		return "leader"
	}
	return "follower"
}

// leaderDaemon runs a reconciler only while this process leads the
// election <prefix>/reconcile-leader.
type leaderDaemon struct {
	r       *reconcile.Reconciler
	client  *clientv3.Client
	key     string
	where   string
	ttl     time.Duration
	timeout time.Duration
	// id is this process as the others see it: hostname and PID.
	id    string
	log   *slog.Logger
	gauge prometheus.Gauge

	mu sync.Mutex
	// role is this process's role; leader is the leader's id, "" while
	// none is known.
	role   role
	leader string
	// problem is why this process cannot take part in the election now,
	// nil while it can.
	problem error
}

func newLeaderDaemon(eb *etcdstate.Backend, r *reconcile.Reconciler, ttl time.Duration, logger *slog.Logger) *leaderDaemon {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return &leaderDaemon{
		r: r, client: eb.Client(), key: eb.Prefix() + electionSuffix, where: eb.Where(), ttl: ttl, timeout: eb.Timeout(),
		id: fmt.Sprintf("%s PID %d", host, os.Getpid()), log: logger,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: leaderMetric,
			Help: "1 while this reconcile daemon leads the election and runs the reconciler, 0 while it stands by.",
		}),
	}
}

// errLeadershipLost ends a term whose leadership ended before the daemon
// was asked to stop.
var errLeadershipLost = errors.New("leadership lost")

// Run campaigns until ctx ends, runs the reconciler while leading, stops
// it at once when leadership ends and campaigns again. It fails only when
// the reconciler fails for another reason than etcd not answering (a
// state that cannot be read).
func (d *leaderDaemon) Run(ctx context.Context) error {
	d.log.Info("campaigning for reconcile leadership", "id", d.id, "election", d.key, "leader_ttl", d.ttl)
	retry := time.Second
	for ctx.Err() == nil {
		err := d.term(ctx)
		var fatal *fatalRunError
		switch {
		case errors.As(err, &fatal):
			return fatal.err
		case ctx.Err() != nil:
		case err == nil, errors.Is(err, errLeadershipLost):
			retry = time.Second
		default:
			d.setProblem(err)
			d.log.Error("cannot take part in the leader election; trying again", "error", err.Error(), "retry", retry)
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
			retry = min(2*retry, d.ttl)
		}
	}
	d.log.Info("left the leader election", "id", d.id)
	return nil
}

// fatalRunError is the reconciler failing while leading, for a reason
// that another term would not cure.
type fatalRunError struct{ err error }

func (e *fatalRunError) Error() string { return e.err.Error() }

// term is one election session: campaign, then lead until the session,
// the key or ctx ends. Its lease is revoked at the end, so that another
// process leads at once when this one stops cleanly.
func (d *leaderDaemon) term(ctx context.Context) error {
	session, err := d.newSession(ctx)
	if err != nil {
		return err
	}
	defer d.endSession(session)
	d.setProblem(nil)
	e := concurrency.NewElection(session, d.key)
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.observe(tctx, e)
	// Campaign returns without an error when the keys before ours are gone
	// even if our own went with our lease meanwhile: end it with the
	// session, and check the key once elected.
	go func() {
		select {
		case <-session.Done():
			cancel()
		case <-tctx.Done():
		}
	}()
	if err := e.Campaign(tctx, d.id); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("campaign in %s: %w", d.key, sessionErr(session, err))
	}
	if err := d.checkElected(tctx, session, e); err != nil {
		return err
	}
	return d.lead(ctx, session, e)
}

// newSession grants the session's lease (bounded by the backend's
// timeout) and keeps it alive.
func (d *leaderDaemon) newSession(ctx context.Context) (*concurrency.Session, error) {
	gctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	lease, err := d.client.Grant(clientv3.WithRequireLeader(gctx), int64(math.Ceil(d.ttl.Seconds())))
	if err != nil {
		return nil, fmt.Errorf("the etcd cluster of %s did not grant an election lease within %s (%v); check that most members are running and reachable", d.where, d.timeout, err)
	}
	// The session's own context must outlive ctx: Close revokes the lease
	// with it.
	session, err := concurrency.NewSession(d.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(lease.TTL)))
	if err != nil {
		return nil, fmt.Errorf("keep the election lease of %s alive: %w", d.where, err)
	}
	return session, nil
}

// endSession revokes the session's lease, deleting this process's
// election key: a follower leads at once.
func (d *leaderDaemon) endSession(session *concurrency.Session) {
	session.Orphan()
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	if _, err := d.client.Revoke(ctx, session.Lease()); err != nil {
		d.log.Warn("could not end the election session; another daemon leads once its lease expires", "error", err.Error(), "leader_ttl", d.ttl)
	}
}

// sessionErr words a campaign error: a session that ended means the lease
// expired (etcd not answering for longer than the TTL).
func sessionErr(session *concurrency.Session, err error) error {
	select {
	case <-session.Done():
		return errors.New("the election session expired: etcd did not answer for longer than -leader-ttl")
	default:
		return err
	}
}

// checkElected makes sure this process's key is still the one the
// campaign put, with the session alive.
func (d *leaderDaemon) checkElected(ctx context.Context, session *concurrency.Session, e *concurrency.Election) error {
	gctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	resp, err := d.client.Get(clientv3.WithRequireLeader(gctx), e.Key())
	if err != nil {
		return fmt.Errorf("check the election key %s: %w", e.Key(), sessionErr(session, err))
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != e.Rev() {
		return errLeadershipLost
	}
	return nil
}

// lead runs the reconciler until leadership or ctx ends. On a clean stop
// it resigns first, so a follower leads without waiting for the lease.
func (d *leaderDaemon) lead(ctx context.Context, session *concurrency.Session, e *concurrency.Election) error {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	d.setRole(roleLeader, d.id)
	d.log.Info("leading: this daemon runs the reconciler", "id", d.id, "election", d.key)
	lost := d.watchLeadership(lctx, session, e)
	done := make(chan error, 1)
	go func() { done <- d.r.Run(lctx) }()
	var err error
	select {
	case why := <-lost:
		// Stop acting at once: the next leader may already be starting.
		stop()
		d.setRole(roleFollower, "")
		d.setProblem(fmt.Errorf("lost leadership: %s", why)) // until the next session
		d.log.Warn("lost leadership; the reconciler stops and this daemon campaigns again", "id", d.id, "reason", why)
		<-done
		return errLeadershipLost
	case err = <-done:
	}
	stop()
	d.setRole(roleFollower, "")
	rctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	_ = e.Resign(rctx)
	cancel()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, etcdstate.ErrUnavailable):
		return err // etcd again: another term, perhaps another leader
	}
	return &fatalRunError{err: err}
}

// watchLeadership reports once why leadership ended: the session ended,
// the keep-alives went unanswered for two thirds of the TTL (the lease may
// expire on the server before the client notices), or the election key was
// deleted. Nothing is sent when ctx ends first.
func (d *leaderDaemon) watchLeadership(ctx context.Context, session *concurrency.Session, e *concurrency.Election) <-chan string {
	lost := make(chan string, 1)
	alive, kerr := d.client.KeepAlive(ctx, session.Lease())
	watch := d.client.Watch(clientv3.WithRequireLeader(ctx), e.Key(), clientv3.WithRev(e.Rev()+1))
	go func() {
		if kerr != nil {
			lost <- "cannot follow the election lease: " + kerr.Error()
			return
		}
		margin := d.ttl * 2 / 3
		last := time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-session.Done():
				lost <- "the election session ended (its lease expired or was revoked)"
				return
			case resp, ok := <-alive:
				if !ok {
					if ctx.Err() == nil {
						lost <- "the election lease expired"
					}
					return
				}
				if resp != nil {
					last = time.Now()
				}
			case wr := <-watch:
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						lost <- "the election key was deleted"
						return
					}
				}
			case <-tick.C:
				if silent := time.Since(last); silent > margin {
					lost <- fmt.Sprintf("etcd did not confirm the election lease for %s", silent.Round(time.Millisecond))
					return
				}
			}
		}
	}()
	return lost
}

// observe follows who leads, for /healthz, until ctx ends.
func (d *leaderDaemon) observe(ctx context.Context, e *concurrency.Election) {
	for resp := range e.Observe(ctx) {
		if len(resp.Kvs) == 0 {
			continue
		}
		leader := string(resp.Kvs[0].Value)
		d.mu.Lock()
		changed := d.leader != leader
		if d.role == roleFollower {
			d.leader = leader
		}
		d.mu.Unlock()
		if changed && leader != d.id {
			d.log.Info("following", "leader", leader, "election", d.key)
		}
	}
}

func (d *leaderDaemon) setRole(r role, leader string) {
	d.mu.Lock()
	d.role, d.leader = r, leader
	d.mu.Unlock()
	if r == roleLeader {
		d.gauge.Set(1)
	} else {
		d.gauge.Set(0)
	}
}

func (d *leaderDaemon) setProblem(err error) {
	d.mu.Lock()
	d.problem = err
	d.mu.Unlock()
}

// Handler serves the reconciler's /metrics (with the leader gauge) and a
// /healthz that says this process's role and who leads:
//
//	200 ok: leader host1 PID 4242
//	200 ok: follower; leader host2 PID 77
//	503 unhealthy: follower; cannot take part in the leader election: …
//
// A follower is healthy: it is ready to take over.
func (d *leaderDaemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", d.r.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		d.mu.Lock()
		r, leader, problem := d.role, d.leader, d.problem
		d.mu.Unlock()
		status := ""
		switch {
		case problem != nil:
			status = fmt.Sprintf("%s; cannot take part in the leader election: %v", r, problem)
		case r == roleLeader:
			if err := d.r.Health(); err != nil {
				status = fmt.Sprintf("leader %s: %v", d.id, err)
			}
		}
		if status != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: %s\n", status)
			return
		}
		if r == roleLeader {
			fmt.Fprintf(w, "ok: leader %s\n", d.id)
		} else if leader == "" {
			fmt.Fprintln(w, "ok: follower; no leader yet")
		} else {
			fmt.Fprintf(w, "ok: follower; leader %s\n", leader)
		}
	})
	return mux
}

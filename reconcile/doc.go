// Package reconcile keeps what the state records running: it is the
// execution half of dockplan, the kubelet's restart loop without an agent
// on the hosts.
//
// The source of truth is the state, not the configuration: an instance is
// restarted or re-created from the create configuration state.Instance
// holds, so the daemon can run where the configuration is not. The caller
// says how to reach each host block by name (Dialer); the package never
// reads HCL.
//
// Once is one pass, for cron or a systemd timer: list every host's
// containers of the project, start the stopped ones, re-create the missing
// ones, restart the unhealthy ones that declare a health check. Run is the
// daemon: per host it subscribes to the engine's events for the project's
// label before listing (so nothing falls between the two), acts at once
// on die, stop, oom, destroy and unhealthy, lists everything again every
// interval, and backs off per instance when a container keeps failing
// (Backoff, the kubelet's policy). Both paths repair through the same
// code.
//
// Locking: a repair takes the state lock for itself only (look again,
// act, save, unlock), waiting while an apply holds it, and reloads the
// state under it; an instance that the apply removed or replaced in the
// meantime is left alone. So apply and reconcile never write at once and
// never fight. Repairs run one at a time; looking runs in parallel.
//
// What it does not do: pull images (an image removed from a host fails
// the re-create until the next apply), re-place instances of a host that
// stays down, re-create containers that link to an instance whose host
// port changed, or touch containers the state does not record (plan and
// apply adopt or remove those).
//
// reconcile must not import the planner, the applier or hclspec; it talks
// to Docker only through engine.Engine.
package reconcile

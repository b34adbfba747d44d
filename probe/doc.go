// Package probe asks every host of a configuration, in parallel, what it
// has and what runs there, and returns one Snapshot: for each host whether
// it answered (or the error), its engine, its capacity (the engine's
// figures or the host block's override, minus the reserve), what running
// containers already hold (managed by dockplan or not), the project's
// managed containers found by label, and which of the configuration's
// images are present.
//
// probe reads; it never changes anything on a host. It talks to Docker only
// through engine.Engine, and it holds no state between calls.
package probe

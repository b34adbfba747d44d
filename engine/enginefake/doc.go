// Package enginefake is a small, hand-written, in-memory implementation of
// engine.Engine for unit tests of the packages above engine (probe,
// applier, reconcile, cli).
//
// A Fake holds containers, images and networks in maps, gives them
// deterministic IDs (the nth container is always the same ID), follows
// Docker's rules where tests depend on them (names are unique, a running
// container cannot be removed without Force, a missing image cannot be
// created from), publishes events to Events subscribers, and records every
// call. Tests steer it with SetUnreachable, Fail and FailOnce, and change
// the world behind the caller's back with AddImage, AddContainer and
// SetState (a crash, an OOM kill).
//
// It must stay small and obvious: it is not a Docker emulator, and it must
// not import the Docker client or its API types.
package enginefake

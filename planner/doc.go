// Package planner is dockplan's scheduler: a pure function of
// (configuration, snapshot, state, options) that returns a Plan, an ordered
// DAG of steps that places every instance where resources are free. See
// README.md in this folder for the pipeline and the words.
//
// planner does no I/O, starts no goroutines, reads no clock and uses no
// randomness: the same inputs give the same plan, byte for byte. It never
// ranges over a map into its output. It imports no Docker client (only
// engine's plain types, to describe containers).
package planner

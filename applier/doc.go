// Package applier carries out a plan: it walks the plan's DAG with bounded
// parallelism (overall and per host), runs each step on the real engines,
// resolves link values that were unknown at plan time as soon as their
// targets run, and saves the state after every completed step. See
// README.md in this folder for the words and the rules.
//
// A failed step skips only its dependents; independent branches go on, and
// every root cause is reported together. The applier decides nothing: the
// plan says what to do and where; the reasons in the plan are never read.
package applier

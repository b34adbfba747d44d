// Package state owns dockplan's record of what it manages: the State model
// (format version, lineage, serial, and for every instance its host,
// container ID, image ID, config hash and full create configuration), its
// JSON encoding, and reading and checking a state file.
//
// The state is an input of the planner and the output of the applier. It
// is the source of truth for reconcile, which re-creates a container from
// the create configuration recorded here without the HCL. It holds
// secrets: files are written with mode 0600.
//
// Where the state lives is a Backend: load, save with a compare-and-swap
// on the serial (CheckSave), and a lock with holder info. File is the local
// backend (atomic writes, one .backup, an flock'd .lock file); state/statetest
// is the conformance suite every backend passes. docs/state-format.md
// describes the format and the rules for users.
//
// state must not talk to Docker or read the configuration.
package state

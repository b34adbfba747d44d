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
// state must not talk to Docker or read the configuration.
package state

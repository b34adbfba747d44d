// Package etcdstate is the etcd state backend: one project's state and its
// lock in an etcd cluster, shared by a team, with the contract of
// state.Backend (the conformance suite state/statetest passes).
//
// Keys live under a prefix (Options.Prefix): <prefix>/state is a small
// manifest (the state's header, where its data is, its size and SHA-256),
// <prefix>/chunks/<generation>/<n> hold the gzip-compressed state in
// chunks of at most 1 MiB (etcd refuses requests over about 1.5 MiB), and
// <prefix>/lock is the lock, a key bound to a lease that the holder keeps
// alive (a dead holder frees it when the lease expires). A save writes its
// chunks under a new generation, then switches the manifest in one
// transaction that compares the manifest's and the lock's revisions, so a
// reader sees the old state or the new one and a writer that lost a race
// is refused. docs/state-format.md describes the layout for users.
//
// Credentials come only from the environment (UsernameEnv, PasswordEnv),
// never from configuration files. Errors say which endpoints did not
// answer; a lost quorum is an *UnavailableError, never a bare context
// deadline.
//
// etcdstate must not read the configuration or talk to Docker; choosing
// the backend from the HCL is the caller's business.
package etcdstate

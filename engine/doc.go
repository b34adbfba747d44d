// Package engine is dockplan's one narrow door to Docker.
//
// It owns three things:
//
//   - Endpoint and Dial: turning a host block's connection settings
//     (unix://, tcp:// with or without TLS, ssh://, or a docker context name)
//     into a connected Engine, with clear errors that name the host block.
//   - Engine: the interface holding only the Docker calls dockplan makes
//     (info, containers, images, networks, events), expressed in this
//     package's own small types so that callers and the in-memory fake in
//     engine/enginefake never depend on Docker's API types.
//   - Error and the sentinels ErrNotFound, ErrConflict, ErrUnreachable and
//     ErrInvalidEndpoint, which callers test with errors.Is.
//
// Every call carries a deadline (Endpoint.Timeout, 10s by default), so a host
// that does not answer becomes an error, never a hang. Streaming calls
// (PullImage, ImageSave, ImageLoad, Events) use the timeout as a stall limit:
// they fail when no byte moves for that long.
//
// The package must not import hclspec or any other dockplan package: callers
// map their configuration to Endpoint and ContainerSpec. It does no planning,
// no placement and no state keeping.
package engine

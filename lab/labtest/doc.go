// Package labtest holds the lab's own integration tests: with the lab up
// (`go run ./lab up 3`) they check that its hosts, published ports,
// cross-host links, registry, partitions and dead hosts behave as real
// machines do. Under CI=true a missing lab fails them; otherwise they skip.
//
// It has no code of its own; tests elsewhere use package labenv.
package labtest

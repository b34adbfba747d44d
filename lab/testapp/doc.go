// Command testapp is dockplan's test workload, built statically into the
// image dockplan-testapp:dev (FROM scratch, entrypoint /testapp).
//
// It serves HTTP on -port (or $PORT, default 8080):
//
//	/          JSON: host name, PID, port, uptime, bytes held
//	/healthz   200 "ok", or 503 after /sick (until /well)
//	/env       its environment as a JSON object (for link tests)
//	/dial      ?addr=HOST:PORT[&mode=http|tcp][&timeout=2s]: GET http://ADDR/healthz
//	           (or a bare TCP connect) and report the outcome as JSON; 200 on
//	           success, 502 on failure. Proves a cross-host link works.
//	/crash     ?code=N: answer, then exit with code N (default 2)
//	/hold      ?bytes=SIZE: allocate and touch SIZE more bytes
//
// Flags, each also an environment variable: -exit-after DURATION
// (TESTAPP_EXIT_AFTER) with -exit-code N (TESTAPP_EXIT_CODE) exits on its
// own; -hold SIZE (TESTAPP_HOLD) holds memory from the start (SIZE takes
// 512MiB, 64M, 1G or bytes). `testapp -healthcheck` GETs its own /healthz
// and exits 0 or 1, so a HEALTHCHECK works in an image with no shell:
// ["CMD", "/testapp", "-healthcheck"].
//
// It uses only the standard library and must build with CGO_ENABLED=0.
package main

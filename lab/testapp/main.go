package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags and environment ask for.
type config struct {
	port        int
	exitAfter   time.Duration
	exitCode    int
	holdBytes   int64
	healthcheck bool
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		os.Exit(2)
	}
	if cfg.healthcheck {
		os.Exit(healthcheck(cfg.port))
	}
	os.Exit(serve(cfg))
}

// parseConfig reads flags, falling back to environment variables.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	var cfg config
	var err error
	envInt := func(name string, def int) int {
		if v := getenv(name); v != "" {
			n, convErr := strconv.Atoi(v)
			if convErr != nil {
				err = errors.Join(err, fmt.Errorf("%s=%q: want a whole number", name, v))
			}
			return n
		}
		return def
	}
	port := envInt("TESTAPP_PORT", envInt("PORT", 8080))
	code := envInt("TESTAPP_EXIT_CODE", 0)
	exitAfter, durErr := parseDuration(getenv("TESTAPP_EXIT_AFTER"))
	hold, sizeErr := parseSize(getenv("TESTAPP_HOLD"))
	if err = errors.Join(err, durErr, sizeErr); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("testapp", flag.ContinueOnError)
	fs.IntVar(&cfg.port, "port", port, "HTTP port ($PORT)")
	fs.DurationVar(&cfg.exitAfter, "exit-after", exitAfter, "exit after this long ($TESTAPP_EXIT_AFTER)")
	fs.IntVar(&cfg.exitCode, "exit-code", code, "exit code for -exit-after ($TESTAPP_EXIT_CODE)")
	holdFlag := fs.String("hold", "", "memory to hold, e.g. 64MiB ($TESTAPP_HOLD)")
	fs.BoolVar(&cfg.healthcheck, "healthcheck", false, "check this container's /healthz and exit 0 or 1")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.holdBytes = hold
	if *holdFlag != "" {
		if cfg.holdBytes, err = parseSize(*holdFlag); err != nil {
			return cfg, err
		}
	}
	if cfg.port < 1 || cfg.port > 65535 {
		return cfg, fmt.Errorf("port %d out of range", cfg.port)
	}
	return cfg, nil
}

// parseDuration accepts "" (none), Go durations ("1m30s") and bare seconds.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want 90s, 1m30s or a number of seconds", s)
	}
	return d, nil
}

// sizeUnits maps size suffixes to their factor, longest first.
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// parseSize accepts "" (zero), bytes, and sizes like 512MiB, 64M or 1G.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	factor := int64(1)
	num := s
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			factor, num = u.factor, strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want bytes or a size like 64MiB", s)
	}
	return int64(n * float64(factor)), nil
}

// serve runs the HTTP server until SIGTERM/SIGINT (exit 0), -exit-after
// (its code) or /crash (the requested code), and returns the exit code.
func serve(cfg config) int {
	app := newApp(cfg.port)
	if err := app.hold(cfg.holdBytes); err != nil {
		log.Printf("testapp: %v", err)
		return 1
	}
	srv := &http.Server{Addr: fmt.Sprintf(":%d", cfg.port), Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("testapp: listening on :%d (pid %d, holding %d bytes)", cfg.port, os.Getpid(), cfg.holdBytes)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var exitTimer <-chan time.Time
	if cfg.exitAfter > 0 {
		exitTimer = time.After(cfg.exitAfter)
	}
	code := 0
	select {
	case err := <-errc:
		log.Printf("testapp: %v", err)
		return 1
	case s := <-sig:
		log.Printf("testapp: %v: shutting down", s)
	case <-exitTimer:
		log.Printf("testapp: exiting with code %d after %v", cfg.exitCode, cfg.exitAfter)
		return cfg.exitCode
	case code = <-app.crash:
		log.Printf("testapp: crashing with code %d on request", code)
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx) // best effort: we exit either way
	return code
}

// healthcheck GETs this container's own /healthz: 0 when it answers 200.
func healthcheck(port int) int {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "unhealthy: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "unhealthy: /healthz answered %s\n", resp.Status)
		return 1
	}
	return 0
}

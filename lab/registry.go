package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// registryConfig is docker-registry's configuration: no auth, storage in
// the lab's data folder, listening only on the lab network's root address.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`

// startRegistry starts the lab registry unless it is running, and waits
// until it answers /v2/.
func startRegistry(ctx context.Context, reg labenv.Registry, tools map[string]string) error {
	if labenv.ReadPIDFile(reg.PIDFile, reg.Config) == 0 {
		if err := spawnRegistry(reg, tools); err != nil {
			return err
		}
	}
	return waitRegistry(ctx, reg)
}

// spawnRegistry writes the configuration and starts docker-registry in a
// session of its own; its PID goes to reg.PIDFile.
func spawnRegistry(reg labenv.Registry, tools map[string]string) error {
	storage := filepath.Join(dataDir, "registry")
	for _, dir := range []string{filepath.Dir(reg.Config), storage} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("start registry: %w", err)
		}
	}
	config := fmt.Sprintf(registryConfig, storage, reg.Address)
	if err := os.WriteFile(reg.Config, []byte(config), 0o644); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	logFile, err := os.OpenFile(reg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(tool(tools, "docker-registry"), "serve", reg.Config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap it should it die while we run
	if err := os.WriteFile(reg.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	return nil
}

// waitRegistry polls the registry's /v2/ until it answers 200.
func waitRegistry(ctx context.Context, reg labenv.Registry) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	url := "http://" + reg.Address + "/v2/"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("registry at %s did not answer (%v); see %s", reg.Address, err, reg.LogFile)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopRegistry ends the registry the lab started (SIGTERM, then SIGKILL).
func stopRegistry(ctx context.Context, reg labenv.Registry) error {
	pid := labenv.ReadPIDFile(reg.PIDFile, reg.Config)
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	termCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if labenv.WaitGone(termCtx, []int{pid}) == nil {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	killCtx, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if err := labenv.WaitGone(killCtx, []int{pid}); err != nil {
		return fmt.Errorf("stop registry: %w", err)
	}
	return nil
}

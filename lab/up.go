package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/dockplan/dockplan/lab/labenv"
)

// upOptions are the settings of `lab up`.
type upOptions struct {
	// hosts is the number of lab hosts, 1..maxHosts.
	hosts int
	// noImage skips building and distributing the test image.
	noImage bool
}

// up brings the lab to n healthy hosts, the registry and (unless noImage)
// the test image on every host and in the registry. Each step checks what
// is there first, so running it again only repairs what is missing: dead
// hosts are started, partitions healed, hosts above n torn down.
func up(ctx context.Context, opts upOptions) error {
	tools, err := findTools()
	if err != nil {
		return err
	}
	lab := newLab(opts.hosts, tools)
	for _, dir := range []string{stateDir, dataDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	for _, i := range hostIndexesInUse() {
		if i > opts.hosts {
			if err := teardownHost(ctx, hostLayout(i, tools)); err != nil {
				return err
			}
		}
	}
	if err := setupSwitch(ctx); err != nil {
		return err
	}
	// The state goes down before the daemons start so that faults and
	// status work on a lab whose up failed half-way.
	if err := writeState(lab); err != nil {
		return err
	}
	regErr := make(chan error, 1)
	go func() { regErr <- startRegistry(ctx, lab.Registry, tools) }()
	hostErr := startHosts(ctx, lab.Hosts)
	if err := errors.Join(hostErr, <-regErr); err != nil {
		return err
	}
	if opts.noImage {
		return nil
	}
	def, err := labenv.DefaultClient()
	if err != nil {
		return err
	}
	defer def.Close()
	if err := labenv.EnsureTestImageOn(ctx, def); err != nil {
		return err
	}
	return distributeImage(ctx, lab, labenv.TestImage)
}

// startHosts sets up every host's network and dockerd in parallel.
func startHosts(ctx context.Context, hosts []labenv.Host) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = startHost(ctx, h)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startHost prepares host h's folders and network, heals a partition left
// from before, and starts its dockerd unless it runs.
func startHost(ctx context.Context, h labenv.Host) error {
	for _, dir := range []string{h.Dir, h.DataRoot} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	if err := os.WriteFile(daemonConfig(h), []byte("{}\n"), 0o644); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	if err := setupHostNet(ctx, h); err != nil {
		return err
	}
	if err := h.Heal(ctx); err != nil {
		return err
	}
	return h.Start(ctx)
}

// writeState writes the lab's state file atomically (temp file, rename).
func writeState(lab *labenv.Lab) error {
	data, err := json.MarshalIndent(lab, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	path := labenv.DefaultStateFile
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/dockplan/dockplan/lab/labenv"
)

// registryRef returns ref's name in the lab registry: its domain, if any,
// is replaced ("busybox" gives "10.213.0.1:5000/busybox:latest").
func registryRef(ref string) string {
	repo, tag := labenv.SplitRef(ref)
	if first, rest, ok := strings.Cut(repo, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		repo = rest
	}
	repo = strings.TrimPrefix(repo, "library/")
	return registryAt + "/" + repo + ":" + tag
}

// distributeImage copies image ref from the machine's default engine into
// every lab host (docker save | docker load, skipped where the host already
// has the same image ID) and pushes it to the lab registry from the first
// host: the default engine treats only 127.0.0.0/8 as an insecure registry,
// so it cannot push to the lab address itself.
func distributeImage(ctx context.Context, lab *labenv.Lab, ref string) error {
	def, err := labenv.DefaultClient()
	if err != nil {
		return err
	}
	defer def.Close()
	id, err := def.ImageID(ctx, ref)
	if err != nil {
		return fmt.Errorf("look for %s in the default engine: %w", ref, err)
	}
	if id == "" {
		return fmt.Errorf("image %s is not in the default engine (%s): build or load it there first", ref, def.Endpoint())
	}
	if len(lab.Hosts) == 0 {
		return errors.New("the lab has no hosts: run `go run ./lab up` first")
	}
	var archive string
	var once sync.Once
	var saveErr error
	save := func() (string, error) {
		once.Do(func() { archive, saveErr = saveImage(ctx, def, ref) })
		return archive, saveErr
	}
	defer func() {
		if archive != "" {
			_ = os.Remove(archive) // temporary copy
		}
	}()
	errs := make([]error, len(lab.Hosts))
	var wg sync.WaitGroup
	for i, h := range lab.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = loadInto(ctx, h, ref, id, save)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return pushFrom(ctx, lab.Hosts[0], ref)
}

// saveImage writes `docker save ref` from the default engine to a file in
// the state folder (so down removes one an interrupted load left behind)
// and returns its path.
func saveImage(ctx context.Context, def *labenv.Client, ref string) (string, error) {
	f, err := os.CreateTemp(stateDir, "image-*.tar")
	if err != nil {
		return "", fmt.Errorf("save %s: %w", ref, err)
	}
	defer f.Close()
	if err := def.SaveImage(ctx, ref, f); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("save %s: %w", ref, err)
	}
	return f.Name(), nil
}

// loadInto loads the saved image into host h unless h already has id.
func loadInto(ctx context.Context, h labenv.Host, ref, id string, save func() (string, error)) error {
	c, err := h.Client(true)
	if err != nil {
		return err
	}
	defer c.Close()
	have, err := c.ImageID(ctx, ref)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	if have == id {
		return nil
	}
	path, err := save()
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load %s into %s: %w", ref, h.Name, err)
	}
	defer f.Close()
	if err := c.LoadImage(ctx, f); err != nil {
		return fmt.Errorf("load %s into %s: %w", ref, h.Name, err)
	}
	return nil
}

// pushFrom tags ref for the lab registry on host h and pushes it from there.
func pushFrom(ctx context.Context, h labenv.Host, ref string) error {
	c, err := h.Client(true)
	if err != nil {
		return err
	}
	defer c.Close()
	target := registryRef(ref)
	if err := c.TagImage(ctx, ref, target); err != nil {
		return fmt.Errorf("tag %s as %s on %s: %w", ref, target, h.Name, err)
	}
	if err := c.PushImage(ctx, target); err != nil {
		return fmt.Errorf("push %s from %s: %w", target, h.Name, err)
	}
	return nil
}

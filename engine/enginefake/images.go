package enginefake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/dockplan/dockplan/engine"
)

// ImageID returns the ID the fake gives the image named ref:
// "sha256:" and the SHA-256 of the name.
func ImageID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// AddImage makes the images present, as if pulled or loaded, and returns
// the ID of the first.
func (f *Fake) AddImage(refs ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := ""
	for _, ref := range refs {
		img := f.addImage(ref)
		if id == "" {
			id = img.ID
		}
	}
	return id
}

// addImage records one image under its name and ID. The caller holds f.mu.
func (f *Fake) addImage(ref string) engine.Image {
	if img, ok := f.images[ref]; ok {
		return img
	}
	img := engine.Image{
		ID: ImageID(ref), RepoTags: []string{ref}, Created: BaseTime, OS: "linux", Arch: "amd64", Size: 8 << 20,
	}
	f.images[ref] = img
	f.images[img.ID] = img
	return img
}

// RemoveImage makes an image absent again.
func (f *Fake) RemoveImage(ref string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[ref]; ok {
		delete(f.images, img.ID)
		for _, tag := range img.RepoTags {
			delete(f.images, tag)
		}
	}
}

// PullImage makes the image present, reporting one progress message. A
// failure injected with Fail(MethodPullImage, …) stands for a registry
// that refuses.
func (f *Fake) PullImage(ctx context.Context, ref string, opts engine.PullOptions) error {
	f.mu.Lock()
	if err := f.begin(ctx, MethodPullImage, "pull image", ref); err != nil {
		f.mu.Unlock()
		return err
	}
	f.addImage(ref)
	f.mu.Unlock()
	if opts.Progress != nil {
		opts.Progress(engine.PullProgress{ID: ref, Status: "Pull complete"})
	}
	return nil
}

// ImageInspect returns an image by name or ID.
func (f *Fake) ImageInspect(ctx context.Context, ref string) (engine.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "inspect image"
	if err := f.begin(ctx, MethodImageInspect, op, ref); err != nil {
		return engine.Image{}, err
	}
	img, ok := f.images[ref]
	if !ok {
		return engine.Image{}, f.notFound(op, ref)
	}
	img.RepoTags = append([]string(nil), img.RepoTags...)
	return img, nil
}

// ImagePresent reports whether the image is present.
func (f *Fake) ImagePresent(ctx context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, MethodImagePresent, "inspect image", ref); err != nil {
		return false, err
	}
	_, ok := f.images[ref]
	return ok, nil
}

// savedImages is the fake's "tar" format: JSON naming the images, enough
// for ImageSave on one Fake and ImageLoad on another to round-trip.
type savedImages struct {
	Format string   `json:"format"`
	Refs   []string `json:"refs"`
}

const savedFormat = "enginefake-save-v1"

// ImageSave returns a stream naming the images; every ref must be present.
func (f *Fake) ImageSave(ctx context.Context, refs []string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "save image"
	subject := strings.Join(refs, ", ")
	if err := f.begin(ctx, MethodImageSave, op, subject); err != nil {
		return nil, err
	}
	for _, ref := range refs {
		if _, ok := f.images[ref]; !ok {
			return nil, f.notFound(op, ref)
		}
	}
	data, err := json.Marshal(savedImages{Format: savedFormat, Refs: refs})
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// ImageLoad reads a stream made by ImageSave and makes its images present.
func (f *Fake) ImageLoad(ctx context.Context, tar io.Reader) error {
	data, readErr := io.ReadAll(tar)
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "load image"
	if err := f.begin(ctx, MethodImageLoad, op, ""); err != nil {
		return err
	}
	if readErr != nil {
		return engine.NewError(f.hostName, op, "", nil, readErr)
	}
	var saved savedImages
	if err := json.Unmarshal(data, &saved); err != nil || saved.Format != savedFormat {
		return engine.NewError(f.hostName, op, "", nil, fmt.Errorf("not a stream made by enginefake's ImageSave"))
	}
	for _, ref := range saved.Refs {
		f.addImage(ref)
	}
	return nil
}

// EnsureNetwork returns the named network, creating it when missing.
func (f *Fake) EnsureNetwork(ctx context.Context, spec engine.NetworkSpec) (engine.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, MethodEnsureNetwork, "create network", spec.Name); err != nil {
		return engine.Network{}, err
	}
	if nw, ok := f.networks[spec.Name]; ok {
		return nw, nil
	}
	driver := spec.Driver
	if driver == "" {
		driver = "bridge"
	}
	sum := sha256.Sum256([]byte("network/" + spec.Name))
	nw := engine.Network{ID: hex.EncodeToString(sum[:]), Name: spec.Name, Driver: driver, Labels: copyMap(spec.Labels)}
	f.networks[spec.Name] = nw
	return nw, nil
}

// ListNetworks lists networks with the labels, ordered by name.
func (f *Fake) ListNetworks(ctx context.Context, labels map[string]string) ([]engine.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, MethodListNetworks, "list networks", ""); err != nil {
		return nil, err
	}
	var out []engine.Network
	for _, name := range sortedKeys(f.networks) {
		if nw := f.networks[name]; labelsMatch(nw.Labels, labels) {
			out = append(out, nw)
		}
	}
	return out, nil
}

// RemoveNetwork removes a network by name or ID.
func (f *Fake) RemoveNetwork(ctx context.Context, networkRef string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	const op = "remove network"
	if err := f.begin(ctx, MethodRemoveNetwork, op, networkRef); err != nil {
		return err
	}
	for _, name := range sortedKeys(f.networks) {
		if nw := f.networks[name]; nw.Name == networkRef || nw.ID == networkRef {
			delete(f.networks, name)
			return nil
		}
	}
	return f.notFound(op, networkRef)
}

package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/lab/labenv"
)

// writeContextMeta writes a docker context the way `docker context create`
// stores it.
func writeContextMeta(t *testing.T, configDir, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	dir := filepath.Join(configDir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := `{"Name":"` + name + `","Metadata":{},"Endpoints":{"docker":{"Host":"` + host + `","SkipTLSVerify":false}}}`
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImageInspectAndPresent(t *testing.T) {
	eng := requireEngine(t)
	img, err := eng.ImageInspect(t.Context(), testImage)
	if err != nil {
		t.Fatalf("ImageInspect: %v", err)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || !slices.Contains(img.RepoTags, testImage) || img.OS != "linux" || img.Size <= 0 {
		t.Errorf("image = %+v", img)
	}
	if _, err := eng.ImageInspect(t.Context(), "dockplan-no-such-image:none"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("inspect of a missing image: %v, want ErrNotFound", err)
	}
	tests := []struct {
		name string
		ref  string
		want bool
	}{
		{"by tag", testImage, true},
		{"by ID", img.ID, true},
		{"missing", "dockplan-no-such-image:none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eng.ImagePresent(t.Context(), tt.ref)
			if err != nil || got != tt.want {
				t.Errorf("ImagePresent(%q) = %v, %v; want %v", tt.ref, got, err, tt.want)
			}
		})
	}
}

// TestImageSaveAndLoad saves the test image under a unique tag, removes the
// tag, and loads it back: the tag must be there again.
func TestImageSaveAndLoad(t *testing.T) {
	eng := requireEngine(t)
	ctx := t.Context()
	docker, err := labenv.DefaultClient()
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	tag := uniqueName(t, "dockplan-enginetest") + ":saved"
	if err := docker.TagImage(ctx, testImage, tag); err != nil {
		t.Fatalf("tag: %v", err)
	}
	t.Cleanup(func() { _ = docker.RemoveImage(context.Background(), tag) })

	rc, err := eng.ImageSave(ctx, []string{tag})
	if err != nil {
		t.Fatalf("ImageSave: %v", err)
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read saved image: %v", err)
	}
	if !tarHas(t, buf.Bytes(), "manifest.json") {
		t.Fatalf("saved stream of %d bytes has no manifest.json", buf.Len())
	}
	if err := docker.RemoveImage(ctx, tag); err != nil {
		t.Fatalf("untag: %v", err)
	}
	if ok, err := eng.ImagePresent(ctx, tag); err != nil || ok {
		t.Fatalf("after untag ImagePresent = %v, %v; want false", ok, err)
	}
	if err := eng.ImageLoad(ctx, &buf); err != nil {
		t.Fatalf("ImageLoad: %v", err)
	}
	if ok, err := eng.ImagePresent(ctx, tag); err != nil || !ok {
		t.Errorf("after load ImagePresent = %v, %v; want true", ok, err)
	}
}

func tarHas(t *testing.T, data []byte, name string) bool {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		if hdr.Name == name {
			return true
		}
	}
}

func TestImageLoadOfGarbageFails(t *testing.T) {
	eng := requireEngine(t)
	err := eng.ImageLoad(t.Context(), strings.NewReader("this is not a tar stream"))
	if err == nil || !strings.Contains(err.Error(), `host "local": load image`) {
		t.Errorf("load of garbage: %v, want an error naming the host", err)
	}
}

// TestPullFromNowhereFails pulls from a loopback port where nothing
// listens: the error must name the host and the image.
func TestPullFromNowhereFails(t *testing.T) {
	eng := requireEngine(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ref := addr + "/dockplan/nothing:1"
	var progress []engine.PullProgress
	err = eng.PullImage(t.Context(), ref, engine.PullOptions{Progress: func(p engine.PullProgress) {
		progress = append(progress, p)
	}})
	if err == nil || !strings.Contains(err.Error(), `host "local": pull image "`+ref+`"`) {
		t.Errorf("pull from nowhere: %v", err)
	}
}

func TestEventsForALabel(t *testing.T) {
	eng := requireEngine(t)
	project := testProject(t, eng)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	events, errs := eng.Events(ctx, engine.EventFilter{Labels: map[string]string{"dockplan.project": project}})

	otherProject := testProject(t, eng)
	if _, err := eng.CreateContainer(ctx, baseSpec(otherProject, "noise")); err != nil {
		t.Fatalf("CreateContainer (other project): %v", err)
	}
	spec := baseSpec(project, "ev")
	id, err := eng.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := eng.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if err := eng.RemoveContainer(ctx, id, engine.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	var actions []engine.EventAction
	var dieCode int
	for ev := range events {
		if ev.ContainerID != id || ev.Name != spec.Name || ev.Attributes["dockplan.project"] != project {
			t.Fatalf("event for another container: %+v", ev)
		}
		if ev.Time.IsZero() || ev.Image != testImage {
			t.Errorf("event lacks time or image: %+v", ev)
		}
		actions = append(actions, ev.Action)
		if ev.Action == engine.ActionDie {
			dieCode, _ = ev.ExitCode()
		}
		if ev.Action == engine.ActionDestroy {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("no destroy event within the deadline; got %v (stream error: %v)", actions, drain(errs))
	}
	for _, want := range []engine.EventAction{engine.ActionCreate, engine.ActionStart, engine.ActionKill, engine.ActionDie, engine.ActionDestroy} {
		if !slices.Contains(actions, want) {
			t.Errorf("actions %v lack %v", actions, want)
		}
	}
	if dieCode != 137 {
		t.Errorf("die exit code = %d, want 137", dieCode)
	}
}

func drain(errs <-chan error) error {
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func TestNetworks(t *testing.T) {
	eng := requireEngine(t)
	ctx := t.Context()
	project := testProject(t, eng)
	name := project + "-net"
	labels := map[string]string{"dockplan.project": project}
	nw, err := eng.EnsureNetwork(ctx, engine.NetworkSpec{Name: name, Labels: labels})
	if err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	t.Cleanup(func() { _ = eng.RemoveNetwork(context.Background(), nw.ID) })
	again, err := eng.EnsureNetwork(ctx, engine.NetworkSpec{Name: name, Labels: labels})
	if err != nil || again.ID != nw.ID || nw.Driver != "bridge" {
		t.Errorf("second EnsureNetwork = %+v, %v; want %+v", again, err, nw)
	}
	list, err := eng.ListNetworks(ctx, labels)
	if err != nil || len(list) != 1 || list[0].Name != name {
		t.Errorf("ListNetworks = %+v, %v", list, err)
	}
	spec := baseSpec(project, "onnet")
	spec.Network = name
	id, err := eng.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateContainer on network: %v", err)
	}
	if err := eng.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	c, err := eng.InspectContainer(ctx, id)
	if err != nil || c.IPAddresses[name] == "" || c.Spec.Network != name {
		t.Errorf("container on network: addresses %v network %q err %v", c.IPAddresses, c.Spec.Network, err)
	}
	if err := eng.RemoveContainer(ctx, id, engine.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if err := eng.RemoveNetwork(ctx, nw.ID); err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
	if err := eng.RemoveNetwork(ctx, nw.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("second RemoveNetwork: %v, want ErrNotFound", err)
	}
}

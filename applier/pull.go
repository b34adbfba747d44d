package applier

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dockplan/dockplan/engine"
	"github.com/dockplan/dockplan/planner"
)

// pull brings the step's image to its host: from its registry, or with
// image_source = "local" from the engine of the machine running dockplan
// (save there, load on the host).
func (r *run) pull(ctx context.Context, s *planner.Step, start time.Time) error {
	eng, err := r.engineFor(s.Host)
	if err != nil {
		return err
	}
	if s.ImageSource == "local" {
		return r.transfer(ctx, s, eng, start)
	}
	auth := ""
	if r.opts.RegistryAuth != nil {
		auth = r.opts.RegistryAuth(s.Image)
	}
	layers := map[string][2]int64{}
	var lastReport time.Time
	return eng.PullImage(ctx, s.Image, engine.PullOptions{RegistryAuth: auth, Progress: func(p engine.PullProgress) {
		if p.Total > 0 {
			layers[p.ID] = [2]int64{p.Current, p.Total}
		}
		if time.Since(lastReport) < time.Second {
			return
		}
		lastReport = time.Now()
		var done, total int64
		for _, l := range layers {
			done, total = done+l[0], total+l[1]
		}
		r.opts.OnEvent(Event{Time: time.Now(), StepID: s.ID, Action: s.Action, Host: s.Host, Phase: Progress,
			Elapsed: time.Since(start), Message: "pulling " + s.Image, BytesDone: done, BytesTotal: total})
	}})
}

// transfer copies an image from the local engine to the host.
func (r *run) transfer(ctx context.Context, s *planner.Step, eng engine.Engine, start time.Time) error {
	if r.opts.Local == nil {
		return fmt.Errorf("image %s has image_source = \"local\", but the engine of this machine is not reachable (DOCKER_HOST or the default socket)", s.Image)
	}
	img, err := r.opts.Local.ImageInspect(ctx, s.Image)
	if err != nil {
		return fmt.Errorf("image %s has image_source = \"local\", but this machine's engine does not have it: build or pull it here first: %w", s.Image, err)
	}
	tar, err := r.opts.Local.ImageSave(ctx, []string{s.Image})
	if err != nil {
		return err
	}
	defer tar.Close()
	cr := &countingReader{r: tar}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.opts.OnEvent(Event{Time: time.Now(), StepID: s.ID, Action: s.Action, Host: s.Host, Phase: Progress,
					Elapsed: time.Since(start), Message: "copying " + s.Image, BytesDone: cr.n.Load(), BytesTotal: img.Size})
			case <-stop:
				return
			}
		}
	}()
	return eng.ImageLoad(ctx, cr)
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// DockerConfigAuth returns a RegistryAuth function reading the user's
// docker config ($DOCKER_CONFIG/config.json or ~/.docker/config.json):
// the "auths" entry of the image's registry. Credential helpers are not
// run; an image whose registry has no entry is pulled anonymously.
func DockerConfigAuth(environ []string) func(image string) string {
	dir := ""
	home := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "DOCKER_CONFIG="); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	if dir == "" {
		dir = filepath.Join(home, ".docker")
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		_ = json.Unmarshal(b, &cfg)
	}
	return func(image string) string {
		reg := registryOf(image)
		entry, ok := cfg.Auths[reg]
		if !ok && reg == "docker.io" {
			entry, ok = cfg.Auths["https://index.docker.io/v1/"]
		}
		if !ok || entry.Auth == "" {
			return ""
		}
		raw, err := base64.StdEncoding.DecodeString(entry.Auth)
		if err != nil {
			return ""
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		b, _ := json.Marshal(map[string]string{"username": user, "password": pass, "serveraddress": reg})
		return base64.URLEncoding.EncodeToString(b)
	}
}

// registryOf returns the registry part of an image reference.
func registryOf(image string) string {
	first, _, found := strings.Cut(image, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

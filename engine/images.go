package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/image"
)

// stallGuard cancels a streaming call when no data has moved for limit.
// Streams (pulls, saves, loads) may rightly take longer than any fixed
// deadline, but a stream on which nothing moves is a host that stopped
// answering.
type stallGuard struct {
	limit   time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	moved   atomic.Bool // some data moved before the stall
}

// newStallGuard returns a context that is cancelled after limit without a
// kick, the guard, and a stop function that must be called when done.
func newStallGuard(parent context.Context, limit time.Duration) (context.Context, *stallGuard, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	g := &stallGuard{limit: limit}
	g.timer = time.AfterFunc(limit, func() {
		g.stalled.Store(true)
		cancel()
	})
	return ctx, g, func() {
		g.timer.Stop()
		cancel()
	}
}

// kick restarts the stall clock.
func (g *stallGuard) kick() {
	g.moved.Store(true)
	g.timer.Reset(g.limit)
}

// guardedReader kicks its guard whenever bytes move.
type guardedReader struct {
	r io.Reader
	g *stallGuard
}

// Read reads and kicks the guard when bytes came.
func (r guardedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.g.kick()
	}
	return n, err
}

// streamErr wraps an error of a guarded stream, reporting a stall as the
// engine not answering.
func (e *dockerEngine) streamErr(parent context.Context, g *stallGuard, op, subject string, err error) error {
	if g.stalled.Load() && parent.Err() == nil {
		format := "no answer from %s within %s: %w"
		if g.moved.Load() {
			format = "no data from %s for %s: %w"
		}
		return NewError(e.hostName, op, subject, ErrUnreachable,
			rewritePlaceholder(fmt.Errorf(format, e.target.address, g.limit, err), e.target.address, e.target.sshHostname))
	}
	return e.wrap(parent, op, subject, g.limit, err)
}

// streamMessage is one message of a pull or load progress stream.
type streamMessage struct {
	Status   string `json:"status"`
	ID       string `json:"id"`
	Progress *struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

// readProgress reads a progress stream to its end, passing messages to
// progress (when set) and returning the first error message in it.
func readProgress(r io.Reader, progress func(PullProgress)) error {
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case m.ErrorDetail != nil && m.ErrorDetail.Message != "":
			return errors.New(m.ErrorDetail.Message)
		case m.Error != "":
			return errors.New(m.Error)
		}
		if progress != nil && m.Status != "" {
			p := PullProgress{ID: m.ID, Status: m.Status}
			if m.Progress != nil {
				p.Current, p.Total = m.Progress.Current, m.Progress.Total
			}
			progress(p)
		}
	}
}

// PullImage pulls ref. The pull may take as long as it needs while
// progress messages keep coming; it fails when none comes for the
// endpoint's timeout.
func (e *dockerEngine) PullImage(ctx context.Context, ref string, opts PullOptions) error {
	sctx, g, stop := newStallGuard(ctx, e.timeout)
	defer stop()
	body, err := e.cli.ImagePull(sctx, ref, image.PullOptions{RegistryAuth: opts.RegistryAuth, Platform: opts.Platform})
	if err != nil {
		return e.streamErr(ctx, g, "pull image", ref, err)
	}
	defer body.Close()
	if err := readProgress(guardedReader{body, g}, opts.Progress); err != nil {
		return e.streamErr(ctx, g, "pull image", ref, err)
	}
	return nil
}

// ImageInspect returns an image's details.
func (e *dockerEngine) ImageInspect(ctx context.Context, ref string) (Image, error) {
	raw, err := call(e, ctx, "inspect image", ref, func(ctx context.Context) (image.InspectResponse, error) {
		return e.cli.ImageInspect(ctx, ref)
	})
	if err != nil {
		return Image{}, err
	}
	img := Image{
		ID:          raw.ID,
		RepoTags:    raw.RepoTags,
		RepoDigests: raw.RepoDigests,
		Created:     parseTime(raw.Created),
		OS:          raw.Os,
		Arch:        raw.Architecture,
		Size:        raw.Size,
	}
	if raw.Config != nil {
		img.Labels = raw.Config.Labels
	}
	return img, nil
}

// ImagePresent reports whether ref is on the engine.
func (e *dockerEngine) ImagePresent(ctx context.Context, ref string) (bool, error) {
	_, err := e.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// ImageSave returns a tar stream of refs. The stream fails when no data
// moves for the endpoint's timeout; the caller's context bounds it as a
// whole. Close it to release the connection.
func (e *dockerEngine) ImageSave(ctx context.Context, refs []string) (io.ReadCloser, error) {
	subject := strings.Join(refs, ", ")
	sctx, g, stop := newStallGuard(ctx, e.timeout)
	body, err := e.cli.ImageSave(sctx, refs)
	if err != nil {
		stop()
		return nil, e.streamErr(ctx, g, "save image", subject, err)
	}
	g.kick()
	return &guardedBody{e: e, ctx: ctx, g: g, stop: stop, body: body, subject: subject}, nil
}

// guardedBody is ImageSave's stream: it kicks the stall guard and wraps
// read errors.
type guardedBody struct {
	e       *dockerEngine
	ctx     context.Context
	g       *stallGuard
	stop    context.CancelFunc
	body    io.ReadCloser
	subject string
}

// Read reads the saved stream, wrapping errors with the host's name.
func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.g.kick()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.e.streamErr(b.ctx, b.g, "save image", b.subject, err)
	}
	return n, err
}

// Close closes the stream and stops its guard.
func (b *guardedBody) Close() error {
	err := b.body.Close()
	b.stop()
	return err
}

// ImageLoad loads a tar stream. Progress is not quiet on purpose: the
// engine reports each layer as it registers it, which keeps the stall guard
// fed while large layers are unpacked after the upload.
func (e *dockerEngine) ImageLoad(ctx context.Context, tar io.Reader) error {
	sctx, g, stop := newStallGuard(ctx, e.timeout)
	defer stop()
	resp, err := e.cli.ImageLoad(sctx, guardedReader{tar, g})
	if err != nil {
		return e.streamErr(ctx, g, "load image", "", err)
	}
	defer resp.Body.Close()
	if err := readProgress(guardedReader{resp.Body, g}, nil); err != nil {
		return e.streamErr(ctx, g, "load image", "", err)
	}
	return nil
}

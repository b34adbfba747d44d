package labenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	// modulePath is the project's module, used to find the repository root.
	modulePath = "github.com/dockplan/dockplan"
	// testappDir is the test program's folder inside the repository.
	testappDir = "lab/testapp"
	// SourceHashLabel is the image label holding a hash of the test
	// program's source, so a stale image is rebuilt. It does not start with
	// "dockplan." because containers inherit image labels and that prefix
	// marks managed containers.
	SourceHashLabel = "io.dockplan.lab.source-hash"
	// buildLockFile serialises builds by concurrent test binaries.
	buildLockFile = "/tmp/dockplan-testapp-build.lock"
)

// dockerfile builds the test image FROM scratch: no pull is needed. It has no
// HEALTHCHECK on purpose (a health exec every few seconds in hundreds of
// containers would load a 2-core machine); containers that want one use
// ["CMD", "/testapp", "-healthcheck"].
const dockerfile = `FROM scratch
COPY testapp /testapp
LABEL ` + SourceHashLabel + `="%s"
EXPOSE 8080
ENTRYPOINT ["/testapp"]
`

// EnsureTestImage makes sure the machine's default engine ($DOCKER_HOST or
// /var/run/docker.sock) has TestImage, building it from lab/testapp when it
// is missing or older than the source. It needs the repository (found
// upward from the working directory) and the go command only to build.
func EnsureTestImage(ctx context.Context) error {
	c, err := DefaultClient()
	if err != nil {
		return err
	}
	defer c.Close()
	return EnsureTestImageOn(ctx, c)
}

// EnsureTestImageOn is EnsureTestImage against the engine c.
func EnsureTestImageOn(ctx context.Context, c *Client) error {
	unlock, err := lockFile(buildLockFile)
	if err != nil {
		return err
	}
	defer unlock()
	id, err := c.ImageID(ctx, TestImage)
	if err != nil {
		return fmt.Errorf("look for test image %s: %w", TestImage, err)
	}
	src, srcErr := readTestappSource()
	if id != "" {
		if srcErr != nil {
			return nil // no source to compare with: use what is there
		}
		labels, err := c.ImageLabels(ctx, TestImage)
		if err != nil {
			return fmt.Errorf("inspect test image %s: %w", TestImage, err)
		}
		if labels[SourceHashLabel] == src.hash {
			return nil
		}
	}
	if srcErr != nil {
		return fmt.Errorf("test image %s is missing on %s and cannot be built: %w; run `go run ./lab image` from the repository",
			TestImage, c.Endpoint(), srcErr)
	}
	return buildTestImage(ctx, c, src)
}

// BuildTestImage builds TestImage into engine c from lab/testapp, whether or
// not it is already there.
func BuildTestImage(ctx context.Context, c *Client) error {
	unlock, err := lockFile(buildLockFile)
	if err != nil {
		return err
	}
	defer unlock()
	src, err := readTestappSource()
	if err != nil {
		return fmt.Errorf("build test image: %w", err)
	}
	return buildTestImage(ctx, c, src)
}

// testappSource is the test program's source files and their hash.
type testappSource struct {
	files map[string][]byte
	hash  string
}

// readTestappSource reads lab/testapp/*.go (tests excluded) from the
// repository that holds the working directory.
func readTestappSource() (testappSource, error) {
	root, err := ModuleRoot()
	if err != nil {
		return testappSource{}, err
	}
	dir := filepath.Join(root, testappDir)
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		return testappSource{}, fmt.Errorf("no Go files in %s", dir)
	}
	sort.Strings(names)
	src := testappSource{files: map[string][]byte{}}
	sum := sha256.New()
	sum.Write([]byte(dockerfile))
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return testappSource{}, fmt.Errorf("read test program source: %w", err)
		}
		base := filepath.Base(name)
		src.files[base] = data
		fmt.Fprintf(sum, "%s %d\n", base, len(data))
		sum.Write(data)
	}
	src.hash = hex.EncodeToString(sum.Sum(nil))[:16]
	return src, nil
}

// ModuleRoot returns the repository root: the nearest folder upward from
// the working directory whose go.mod declares the dockplan module.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// buildTestImage compiles the test program statically in a throwaway module
// (so the project's go.mod, possibly mid-edit, does not matter) and builds
// the image from a context holding only the binary and the Dockerfile.
func buildTestImage(ctx context.Context, c *Client, src testappSource) error {
	tmp, err := os.MkdirTemp("", "dockplan-testapp-")
	if err != nil {
		return fmt.Errorf("build test image: %w", err)
	}
	defer os.RemoveAll(tmp)
	files := map[string][]byte{"go.mod": []byte("module dockplan-testapp\n\ngo 1.22\n")}
	for name, data := range src.files {
		files[name] = data
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return fmt.Errorf("build test image: %w", err)
		}
	}
	bin, err := compileTestapp(ctx, tmp)
	if err != nil {
		return err
	}
	buildCtx, err := tarContext(map[string]tarEntry{
		"Dockerfile": {data: []byte(fmt.Sprintf(dockerfile, src.hash)), mode: 0o644},
		"testapp":    {data: bin, mode: 0o755},
	})
	if err != nil {
		return fmt.Errorf("build test image: %w", err)
	}
	oldID, _ := c.ImageID(ctx, TestImage) // "" when absent or unknown
	if err := c.BuildImage(ctx, bytes.NewReader(buildCtx), TestImage); err != nil {
		return fmt.Errorf("build test image %s: %w", TestImage, err)
	}
	if newID, err := c.ImageID(ctx, TestImage); err == nil && oldID != "" && newID != oldID {
		// Best effort: the engine refuses while a container or another tag
		// still uses the old image, and then it stays.
		_ = c.RemoveImage(ctx, oldID)
	}
	return nil
}

// compileTestapp builds the static test binary in dir and returns it.
func compileTestapp(ctx context.Context, dir string) ([]byte, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, statErr := os.Stat(goCmd); statErr != nil {
			return nil, fmt.Errorf("build test image: the go command is not on PATH: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", "testapp", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build test program: %w: %s", err, strings.TrimSpace(string(out)))
	}
	bin, err := os.ReadFile(filepath.Join(dir, "testapp"))
	if err != nil {
		return nil, fmt.Errorf("build test program: %w", err)
	}
	return bin, nil
}

// tarEntry is one file of a build context.
type tarEntry struct {
	data []byte
	mode int64
}

// tarContext returns a tar archive of files, in name order.
func tarContext(files map[string]tarEntry) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		f := files[name]
		hdr := &tar.Header{Name: name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lockFile takes an exclusive flock on path and returns its release.
func lockFile(path string) (func(), error) {
	return flock(path, syscall.LOCK_EX, lockTimeout)
}

package engine

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// defaultContextName is the docker CLI's built-in context: the local engine.
const defaultContextName = "default"

// defaultLocalAddress is where the built-in "default" context points when
// DOCKER_HOST is unset.
const defaultLocalAddress = "unix:///var/run/docker.sock"

// contextMeta is the part of a docker context's meta.json that we read.
// The docker CLI stores it at contexts/meta/<sha256(name)>/meta.json.
type contextMeta struct {
	Name      string
	Endpoints map[string]struct {
		Host          string
		SkipTLSVerify bool
	}
}

// contextTLS is the TLS material of a context's docker endpoint, stored by
// the docker CLI at contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem.
type contextTLS struct {
	files      TLSFiles
	skipVerify bool
}

func (c *contextTLS) enabled() bool {
	return c.skipVerify || c.files != (TLSFiles{})
}

// config builds the TLS configuration. Skipping verification is honoured
// only when the host block also says insecure = true.
func (c *contextTLS) config(ep Endpoint, serverName string) (*tls.Config, error) {
	if c.skipVerify && !ep.Insecure {
		return nil, fmt.Errorf("docker context %q skips TLS verification; add insecure = true to accept that", ep.Context)
	}
	cfg, err := loadTLS(c.files, serverName)
	if err != nil {
		return nil, err
	}
	cfg.InsecureSkipVerify = c.skipVerify
	return cfg, nil
}

// dockerConfigDir returns where docker contexts live for ep.
func dockerConfigDir(ep Endpoint) (string, error) {
	if ep.DockerConfigDir != "" {
		return ep.DockerConfigDir, nil
	}
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the docker config directory: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// contextDirName is the docker CLI's directory name for a context.
func contextDirName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// resolveContext reads the named docker context and resolves its docker
// endpoint with the same rules as an address written in the host block.
func resolveContext(ep Endpoint) (*target, error) {
	fail := func(kind, err error) error {
		return NewError(ep.HostName, "read docker context", ep.Context, kind, err)
	}
	dir, err := dockerConfigDir(ep)
	if err != nil {
		return nil, fail(ErrInvalidEndpoint, err)
	}
	metaPath := filepath.Join(dir, "contexts", "meta", contextDirName(ep.Context), "meta.json")
	data, err := os.ReadFile(metaPath)
	switch {
	case errors.Is(err, os.ErrNotExist) && ep.Context == defaultContextName:
		// Like the docker CLI's built-in context: $DOCKER_HOST, else the
		// local socket.
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = defaultLocalAddress
		}
		return resolveContextHost(ep, host, nil)
	case errors.Is(err, os.ErrNotExist):
		return nil, fail(ErrInvalidEndpoint, fmt.Errorf("no such context in %s; `docker context ls` lists the known ones",
			filepath.Join(dir, "contexts")))
	case err != nil:
		return nil, fail(ErrInvalidEndpoint, err)
	}
	var meta contextMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fail(ErrInvalidEndpoint, fmt.Errorf("%s is not valid JSON: %w", metaPath, err))
	}
	dockerEP, ok := meta.Endpoints["docker"]
	if !ok || dockerEP.Host == "" {
		return nil, fail(ErrInvalidEndpoint, fmt.Errorf("%s has no docker endpoint host", metaPath))
	}
	ctxTLS := &contextTLS{skipVerify: dockerEP.SkipTLSVerify}
	tlsDir := filepath.Join(dir, "contexts", "tls", contextDirName(ep.Context), "docker")
	for name, field := range map[string]*string{
		"ca.pem": &ctxTLS.files.CAFile, "cert.pem": &ctxTLS.files.CertFile, "key.pem": &ctxTLS.files.KeyFile,
	} {
		if p := filepath.Join(tlsDir, name); fileExists(p) {
			*field = p
		}
	}
	return resolveContextHost(ep, dockerEP.Host, ctxTLS)
}

// resolveContextHost resolves the address a context points at. Errors keep
// naming the context, and say which address it held.
func resolveContextHost(ep Endpoint, host string, ctxTLS *contextTLS) (*target, error) {
	resolved := ep
	resolved.Context = ""
	resolved.Address = host
	u, err := url.Parse(host)
	if err != nil {
		return nil, NewError(ep.HostName, "read docker context", ep.Context, ErrInvalidEndpoint,
			fmt.Errorf("host %q is not a valid address: %v", host, unwrapURLError(err)))
	}
	var t *target
	if u.Scheme == "tcp" {
		t, err = resolveTCP(resolved, u, ctxTLS)
		if err == nil {
			t.maxConns = maxConnsFor(ep, t.scheme)
		}
	} else {
		t, err = resolve(resolved)
	}
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, NewError(ep.HostName, "use docker context", ep.Context, e.Kind,
				fmt.Errorf("address %s: %w", host, e.Err))
		}
		return nil, err
	}
	return t, nil
}

// maxConnsFor returns the connection cap for a scheme.
func maxConnsFor(ep Endpoint, scheme string) int {
	switch {
	case ep.MaxConnections > 0:
		return ep.MaxConnections
	case scheme == "ssh":
		return defaultMaxConnsSSH
	}
	return defaultMaxConnsOther
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

package labenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiVersion is Debian bookworm's Docker 20.10 API; newer engines accept it.
const apiVersion = "/v1.41"

// defaultSocket is the machine's default engine when DOCKER_HOST is unset.
const defaultSocket = "unix:///var/run/docker.sock"

// Client speaks a few calls of the Docker Engine HTTP API to one engine.
// It exists so that the lab and its tests need no Docker Go client.
type Client struct {
	endpoint string
	baseURL  string
	http     *http.Client
}

// APIError is a non-2xx answer from an engine.
type APIError struct {
	// Endpoint is the engine that answered.
	Endpoint string
	// Status is the HTTP status code.
	Status int
	// Message is the engine's error message.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("docker %s: %d %s", e.Endpoint, e.Status, e.Message)
}

// IsNotFound reports whether err is an engine's 404 answer.
func IsNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound
}

// NewClient returns a client for endpoint, a "unix://PATH" or "tcp://HOST:PORT"
// address. Calls are bounded only by their context.
func NewClient(endpoint string) (*Client, error) {
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	transport := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	c := &Client{endpoint: endpoint, http: &http.Client{Transport: transport}}
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		path := strings.TrimPrefix(endpoint, "unix://")
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
		c.baseURL = "http://docker"
	case strings.HasPrefix(endpoint, "tcp://"):
		transport.DialContext = dialer.DialContext
		c.baseURL = "http://" + strings.TrimPrefix(endpoint, "tcp://")
	default:
		return nil, fmt.Errorf("docker endpoint %q: want unix://PATH or tcp://HOST:PORT", endpoint)
	}
	return c, nil
}

// DefaultClient returns a client for the machine's default engine:
// $DOCKER_HOST, or the default socket.
func DefaultClient() (*Client, error) {
	endpoint := os.Getenv("DOCKER_HOST")
	if endpoint == "" {
		endpoint = defaultSocket
	}
	return NewClient(endpoint)
}

// Endpoint returns the address the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// do sends one request and returns the response when the status is 2xx.
// The caller closes the body.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, header http.Header) (*http.Response, error) {
	u := c.baseURL + apiVersion + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("docker %s: %s %s: %w", c.endpoint, method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s: %s %s: %w", c.endpoint, method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var msg struct{ Message string }
	if json.Unmarshal(data, &msg) != nil || msg.Message == "" {
		msg.Message = strings.TrimSpace(string(data))
	}
	return nil, &APIError{Endpoint: c.endpoint, Status: resp.StatusCode, Message: msg.Message}
}

// getJSON decodes the answer to a GET into out.
func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker %s: decode %s: %w", c.endpoint, path, err)
	}
	return nil
}

// stream sends a request whose answer is a stream of JSON progress messages
// and returns the first error message in it, if any.
func (c *Client) stream(ctx context.Context, method, path string, query url.Values, body io.Reader, header http.Header) error {
	resp, err := c.do(ctx, method, path, query, body, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("docker %s: %s %s: read progress: %w", c.endpoint, method, path, err)
		}
		if msg.Error != "" || msg.ErrorDetail.Message != "" {
			text := msg.ErrorDetail.Message
			if text == "" {
				text = msg.Error
			}
			return fmt.Errorf("docker %s: %s %s: %s", c.endpoint, method, path, strings.TrimSpace(text))
		}
	}
}

// Ping checks that the engine answers /_ping.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/_ping", nil, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// Info is the part of `docker info` the lab uses.
type Info struct {
	// ID is the engine ID; every lab host reports the same one.
	ID string
	// Name is the engine's host name; it differs per lab host.
	Name string
	// ServerVersion is the engine version.
	ServerVersion string
	// NCPU and MemTotal are the machine's, the same on every lab host.
	NCPU     int
	MemTotal int64
	// Containers and ContainersRunning count the engine's containers.
	Containers        int
	ContainersRunning int
	// Labels are the engine's labels ("key=value").
	Labels []string
}

// Info returns the engine's `docker info`.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var info Info
	err := c.getJSON(ctx, "/info", &info)
	return info, err
}

// ImageID returns the ID of the image ref, or "" when the engine lacks it.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	var img struct {
		ID string `json:"Id"`
	}
	err := c.getJSON(ctx, "/images/"+ref+"/json", &img)
	if IsNotFound(err) {
		return "", nil
	}
	return img.ID, err
}

// ImageLabels returns the labels of image ref.
func (c *Client) ImageLabels(ctx context.Context, ref string) (map[string]string, error) {
	var img struct {
		Config struct{ Labels map[string]string }
	}
	err := c.getJSON(ctx, "/images/"+ref+"/json", &img)
	return img.Config.Labels, err
}

// SaveImage writes `docker save ref` to w.
func (c *Client) SaveImage(ctx context.Context, ref string, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, "/images/get", url.Values{"names": {ref}}, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("docker %s: save %s: %w", c.endpoint, ref, err)
	}
	return nil
}

// LoadImage is `docker load` of the tar stream r.
func (c *Client) LoadImage(ctx context.Context, r io.Reader) error {
	header := http.Header{"Content-Type": {"application/x-tar"}}
	return c.stream(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, r, header)
}

// TagImage is `docker tag ref target`.
func (c *Client) TagImage(ctx context.Context, ref, target string) error {
	repo, tag := SplitRef(target)
	resp, err := c.do(ctx, http.MethodPost, "/images/"+ref+"/tag", url.Values{"repo": {repo}, "tag": {tag}}, nil, nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// registryAuth is an empty X-Registry-Auth ("{}"): the lab registry has no
// authentication, but the engine refuses a push without the header.
var registryAuth = http.Header{"X-Registry-Auth": {"e30="}}

// PushImage is `docker push ref`.
func (c *Client) PushImage(ctx context.Context, ref string) error {
	repo, tag := SplitRef(ref)
	return c.stream(ctx, http.MethodPost, "/images/"+repo+"/push", url.Values{"tag": {tag}}, nil, registryAuth)
}

// PullImage is `docker pull ref`.
func (c *Client) PullImage(ctx context.Context, ref string) error {
	repo, tag := SplitRef(ref)
	return c.stream(ctx, http.MethodPost, "/images/create", url.Values{"fromImage": {repo}, "tag": {tag}}, nil, registryAuth)
}

// RemoveImage is `docker rmi ref`; a missing image is no error.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/images/"+ref, nil, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// BuildImage is `docker build -t tag` of the tar build context r, with the
// classic builder (no BuildKit, which Debian's engine may lack).
func (c *Client) BuildImage(ctx context.Context, r io.Reader, tag string) error {
	query := url.Values{"t": {tag}, "rm": {"1"}, "forcerm": {"1"}}
	header := http.Header{"Content-Type": {"application/x-tar"}}
	return c.stream(ctx, http.MethodPost, "/build", query, r, header)
}

// SplitRef splits an image reference into repository and tag ("latest" when
// absent): "10.213.0.1:5000/app:dev" gives "10.213.0.1:5000/app" and "dev".
func SplitRef(ref string) (repo, tag string) {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, "latest"
}

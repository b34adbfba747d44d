package labenv

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeEngine answers the few API calls the client makes.
func fakeEngine(t *testing.T) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.41/_ping", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "OK") })
	mux.HandleFunc("GET /v1.41/info", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"ID":"X","Name":"lab-host2","NCPU":2,"MemTotal":1024,"Labels":["dockplan-lab.host=host2"]}`)
	})
	mux.HandleFunc("GET /v1.41/images/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("ref") != "app:dev/json" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"No such image"}`)
			return
		}
		io.WriteString(w, `{"Id":"sha256:abc","Config":{"Labels":{"k":"v"}}}`)
	})
	mux.HandleFunc("POST /v1.41/images/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Registry-Auth") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, `{"status":"pushing"}`+"\n"+`{"errorDetail":{"message":"connection refused"},"error":"connection refused"}`+"\n")
	})
	mux.HandleFunc("POST /v1.41/build", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("t") != "app:dev" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, `{"stream":"Step 1/2"}`+"\n"+`{"aux":{"ID":"sha256:abc"}}`+"\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := NewClient("tcp://" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClientCalls(t *testing.T) {
	c := fakeEngine(t)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil || info.Name != "lab-host2" || info.NCPU != 2 || len(info.Labels) != 1 {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if id, err := c.ImageID(ctx, "app:dev"); err != nil || id != "sha256:abc" {
		t.Fatalf("ImageID(app:dev) = %q, %v", id, err)
	}
	if id, err := c.ImageID(ctx, "other:dev"); err != nil || id != "" {
		t.Fatalf("ImageID of a missing image = %q, %v; want \"\", nil", id, err)
	}
	if labels, err := c.ImageLabels(ctx, "app:dev"); err != nil || labels["k"] != "v" {
		t.Fatalf("ImageLabels = %v, %v", labels, err)
	}
	if err := c.BuildImage(ctx, strings.NewReader(""), "app:dev"); err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	err = c.PushImage(ctx, "10.213.0.1:5000/app:dev")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("PushImage error = %v, want the stream's error message", err)
	}
	_, err = c.ImageLabels(ctx, "other:dev")
	if !IsNotFound(err) || !strings.Contains(err.Error(), "No such image") {
		t.Fatalf("ImageLabels of a missing image: %v, want a 404 APIError", err)
	}
}

func TestNewClientRejectsUnknownScheme(t *testing.T) {
	for _, endpoint := range []string{"ssh://host", "10.0.0.1:2375", ""} {
		if _, err := NewClient(endpoint); err == nil {
			t.Errorf("NewClient(%q) accepted it", endpoint)
		}
	}
}

func TestSplitRef(t *testing.T) {
	tests := []struct{ ref, repo, tag string }{
		{"app", "app", "latest"},
		{"app:dev", "app", "dev"},
		{"10.213.0.1:5000/app", "10.213.0.1:5000/app", "latest"},
		{"10.213.0.1:5000/team/app:v1", "10.213.0.1:5000/team/app", "v1"},
	}
	for _, tt := range tests {
		repo, tag := SplitRef(tt.ref)
		if repo != tt.repo || tag != tt.tag {
			t.Errorf("SplitRef(%q) = %q, %q; want %q, %q", tt.ref, repo, tag, tt.repo, tt.tag)
		}
	}
}

func TestTestappSourceAndContext(t *testing.T) {
	src, err := readTestappSource()
	if err != nil {
		t.Fatalf("readTestappSource: %v", err)
	}
	if _, ok := src.files["main.go"]; !ok || len(src.hash) != 16 {
		t.Fatalf("source files %d, hash %q", len(src.files), src.hash)
	}
	for name := range src.files {
		if strings.HasSuffix(name, "_test.go") {
			t.Errorf("test file %s would go into the image build", name)
		}
	}
	again, _ := readTestappSource()
	if again.hash != src.hash {
		t.Errorf("hash not stable: %s then %s", src.hash, again.hash)
	}
	data, err := tarContext(map[string]tarEntry{"b": {data: []byte("2"), mode: 0o755}, "a": {data: []byte("1"), mode: 0o644}})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("tar entries = %v, want a,b", names)
	}
}

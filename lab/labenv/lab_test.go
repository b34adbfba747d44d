package labenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func loadTestdata(t *testing.T) *Lab {
	t.Helper()
	lab, err := LoadFile(filepath.Join("testdata", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{name: "not json", data: "{", wantErr: "decode"},
		{name: "old version", data: `{"version": 0}`, wantErr: "go run ./lab down"},
		{name: "host without address", data: `{"version": 1, "hosts": [{"name": "host1"}]}`, wantErr: "host 1: name, address"},
		{name: "no hosts", data: `{"version": 1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadFileMissingIsNotUp(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "state.json"))
	if err == nil || !strings.Contains(err.Error(), ErrNotUp.Error()) {
		t.Fatalf("LoadFile of a missing file = %v, want ErrNotUp", err)
	}
}

func TestHostLookup(t *testing.T) {
	lab := loadTestdata(t)
	for _, name := range []string{"host2", "2", "lab-host2"} {
		h, err := lab.Host(name)
		if err != nil || h.Address != "127.0.0.12" {
			t.Errorf("Host(%q) = %+v, %v; want host2", name, h, err)
		}
	}
	_, err := lab.Host("host9")
	if err == nil || !strings.Contains(err.Error(), "host1, host2") {
		t.Errorf("Host(host9) error = %v, want it to list the hosts", err)
	}
	h, _ := lab.Host("host1")
	if h.SocketPath() != "/nonexistent/dockplan-lab-test/host1/docker.sock" || h.HostPort() != "127.0.0.11:2375" {
		t.Errorf("SocketPath, HostPort = %q, %q", h.SocketPath(), h.HostPort())
	}
}

func TestHostBlock(t *testing.T) {
	lab := loadTestdata(t)
	h := lab.Hosts[0]
	tests := []struct {
		name string
		opts HostBlockOptions
		want string
	}{
		{
			name: "tcp",
			want: "host \"host1\" {\n  address  = \"tcp://127.0.0.11:2375\"\n  insecure = true\n}\n",
		},
		{
			name: "socket with labels and extra",
			opts: HostBlockOptions{UseSocket: true, Labels: map[string]string{"zone": "b", "disk": "ssd"}, Extra: []string{`reserve { memory = "1GiB" }`}},
			want: "host \"host1\" {\n  address = \"unix:///nonexistent/dockplan-lab-test/host1/docker.sock\"\n" +
				"  labels = {\n    \"disk\" = \"ssd\"\n    \"zone\" = \"b\"\n  }\n  reserve { memory = \"1GiB\" }\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.HostBlock(tt.opts); got != tt.want {
				t.Errorf("HostBlock =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if got := lab.HCL(); strings.Count(got, "host \"") != 2 || !strings.Contains(got, "}\n\nhost \"host2\"") {
		t.Errorf("Lab.HCL =\n%s", got)
	}
}

func TestHCLQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"${x} %{y} $z", `"$${x} %%{y} $z"`},
		{"a\nb", `"a\nb"`},
	}
	for _, tt := range tests {
		if got := hclQuote(tt.in); got != tt.want {
			t.Errorf("hclQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// fakeTB records how Require ended a test.
type fakeTB struct {
	testing.TB
	fatal, skip string
	cleanups    []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) { f.skip = fmt.Sprint(args...); runtime.Goexit() }

// runRequire calls Require in its own goroutine, as Fatal and Skip end it.
func runRequire(f *fakeTB) *Lab {
	var lab *Lab
	done := make(chan struct{})
	go func() {
		defer close(done)
		lab = Require(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return lab
}

func TestRequireWhenLabIsDown(t *testing.T) {
	tests := []struct {
		name      string
		ci        string
		stateFile string
		wantFatal bool
	}{
		{name: "no state, CI", ci: "true", stateFile: "missing", wantFatal: true},
		{name: "no state, not CI", ci: "", stateFile: "missing"},
		{name: "hosts not answering, CI", ci: "true", stateFile: filepath.Join("testdata", "state.json"), wantFatal: true},
		{name: "hosts not answering, not CI", ci: "false", stateFile: filepath.Join("testdata", "state.json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.stateFile
			if path == "missing" {
				path = filepath.Join(t.TempDir(), "state.json")
			}
			t.Setenv(StateFileEnv, path)
			t.Setenv("CI", tt.ci)
			f := &fakeTB{}
			if lab := runRequire(f); lab != nil {
				t.Fatalf("Require returned a lab: %+v", lab)
			}
			msg := f.skip
			if tt.wantFatal {
				msg = f.fatal
			}
			if msg == "" || !strings.Contains(msg, UpCommand) {
				t.Fatalf("fatal = %q, skip = %q; want the %s message to say to run %q",
					f.fatal, f.skip, map[bool]string{true: "fatal", false: "skip"}[tt.wantFatal], UpCommand)
			}
		})
	}
}

func TestStateFileEnv(t *testing.T) {
	t.Setenv(StateFileEnv, "")
	if StateFile() != DefaultStateFile {
		t.Errorf("StateFile() = %q, want %q", StateFile(), DefaultStateFile)
	}
	t.Setenv(StateFileEnv, "/tmp/x.json")
	if StateFile() != "/tmp/x.json" {
		t.Errorf("StateFile() = %q with %s set", StateFile(), StateFileEnv)
	}
}

func TestProcessHelpers(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Error("processAlive(self) = false")
	}
	if inCgroup(os.Getpid(), "/dockplan-no-such-cgroup") {
		t.Error("inCgroup reports a cgroup that does not exist")
	}
	pidFile := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if ReadPIDFile(pidFile, "no-such-marker-in-my-cmdline") != 0 {
		t.Error("ReadPIDFile accepted a process whose command line lacks the marker")
	}
	if ReadPIDFile(pidFile, os.Args[0]) != os.Getpid() {
		t.Error("ReadPIDFile rejected this process")
	}
}

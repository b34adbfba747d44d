package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/lab/labenv"
)

func TestLayout(t *testing.T) {
	lab := newLab(3, map[string]string{"dockerd": "/usr/sbin/dockerd"})
	if len(lab.Hosts) != 3 || lab.Registry.Address != "10.213.0.1:5000" || lab.RegistryImage != "10.213.0.1:5000/dockplan-testapp:dev" {
		t.Fatalf("lab = %+v", lab)
	}
	h := lab.Hosts[1]
	want := labenv.Host{
		Name: "host2", Index: 2, Hostname: "lab-host2", Address: "10.213.0.12",
		TCPAddress: "tcp://10.213.0.12:2375", Socket: "unix:///run/dockplan-lab/host2/docker.sock",
		Netns: "dplab-host2", Link: "eth0", BridgeIP: "172.30.2.1/24", CgroupParent: "/lab-host2",
	}
	got := labenv.Host{
		Name: h.Name, Index: h.Index, Hostname: h.Hostname, Address: h.Address,
		TCPAddress: h.TCPAddress, Socket: h.Socket, Netns: h.Netns, Link: h.Link,
		BridgeIP: h.BridgeIP, CgroupParent: h.CgroupParent,
	}
	if got.Name != want.Name || got.Address != want.Address || got.TCPAddress != want.TCPAddress ||
		got.Socket != want.Socket || got.Netns != want.Netns || got.BridgeIP != want.BridgeIP ||
		got.CgroupParent != want.CgroupParent || got.Hostname != want.Hostname || got.Link != want.Link {
		t.Errorf("host2 = %+v\nwant %+v", got, want)
	}
	cmd := strings.Join(h.Command, " ")
	for _, part := range []string{
		"nsenter --net=/run/netns/dplab-host2 -- unshare --uts --", "lab-host2 /usr/sbin/dockerd",
		"--tls=false", "--config-file /run/dockplan-lab/host2/daemon.json", "--insecure-registry 10.213.0.1:5000",
		"--cgroup-parent /lab-host2", "--host tcp://10.213.0.12:2375", "--pidfile " + h.PIDFile,
	} {
		if !strings.Contains(cmd, part) {
			t.Errorf("dockerd command lacks %q:\n%s", part, cmd)
		}
	}
}

func TestRegistryRef(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dockplan-testapp:dev", "10.213.0.1:5000/dockplan-testapp:dev"},
		{"busybox", "10.213.0.1:5000/busybox:latest"},
		{"docker.io/library/redis:7", "10.213.0.1:5000/redis:7"},
		{"localhost:5000/team/app:v1", "10.213.0.1:5000/team/app:v1"},
		{"team/app", "10.213.0.1:5000/team/app:latest"},
	}
	for _, tt := range tests {
		if got := registryRef(tt.in); got != tt.want {
			t.Errorf("registryRef(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestShellEnv(t *testing.T) {
	lab := newLab(2, nil)
	env := shellEnv(lab)
	for _, line := range []string{
		"export DOCKPLAN_LAB_HOSTS='host1 host2'",
		"export DOCKPLAN_LAB_HOST2_TCP='tcp://10.213.0.12:2375'",
		"export DOCKPLAN_LAB_HOST1_SOCKET='unix:///run/dockplan-lab/host1/docker.sock'",
		"export DOCKPLAN_LAB_HOST1_HOSTNAME='lab-host1'",
		"export DOCKPLAN_LAB_REGISTRY='10.213.0.1:5000'",
	} {
		if !strings.Contains(env, line+"\n") {
			t.Errorf("env output lacks %q:\n%s", line, env)
		}
	}
	if got := shellQuote("it's"); got != `'it'\''s'` {
		t.Errorf("shellQuote = %s", got)
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/run/a\040b/c`); got != "/run/a b/c" {
		t.Errorf("unescapeMount = %q", got)
	}
	if got := unescapeMount("/plain"); got != "/plain" {
		t.Errorf("unescapeMount = %q", got)
	}
}

func TestParseFlagsAnyOrder(t *testing.T) {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	power := fs.Bool("power", false, "")
	pos, err := parseFlags(fs, []string{"host3", "-power"})
	if err != nil || !*power || len(pos) != 1 || pos[0] != "host3" {
		t.Fatalf("parseFlags = %v, %v, power=%v", pos, err, *power)
	}
	if _, err := parseFlags(flag.NewFlagSet("x", flag.ContinueOnError), []string{"-nope"}); !errors.Is(err, errUsage) {
		t.Fatalf("unknown flag error = %v, want errUsage", err)
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "no command", args: nil},
		{name: "unknown command", args: []string{"frobnicate"}},
		{name: "env with argument", args: []string{"env", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), tt.args, &out); !errors.Is(err, errUsage) {
				t.Fatalf("run(%q) = %v, want a usage error", tt.args, err)
			}
		})
	}
}

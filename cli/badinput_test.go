package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// badConfig is a configuration with one thing changed. Every part sits on
// a fixed line, so cases can say where the error must point:
//
//	line 4: the host's address       line 13: the container's image
//	line 9: hostExtra (host block)   line 14: count
//	                                 line 15: extra (container block)
type badConfig struct {
	addr      string // default tcp://127.0.0.1:1 (nothing listens on port 1)
	hostExtra string
	image     string // default image = "nginx:1.25"
	count     string // default count = 2
	extra     string
	noCap     bool   // leave the capacity block out
	variables string // appended after the container block (line 17 on)
}

func (c badConfig) String() string {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	capacity := "  capacity {\n    cpu    = 2\n    memory = \"2GiB\"\n  }\n"
	if c.noCap {
		capacity = "\n\n\n\n"
	}
	return `project = "demo"

host "node1" {
  address = "` + or(c.addr, "tcp://127.0.0.1:1") + `"
` + capacity + `  ` + c.hostExtra + `
}

container "web" {
  ` + or(c.image, `image = "nginx:1.25"`) + `
  ` + or(c.count, `count = 2`) + `
  ` + c.extra + `
}
` + c.variables
}

// badInputCase is one kind of bad input and what dockplan must say about it.
type badInputCase struct {
	name string
	// files are written into an empty directory; "main.dockplan.hcl"
	// defaults to badConfig{}.
	files map[string]string
	// setup may add files or start loopback listeners; it returns
	// replacements applied to args, files and want ("ADDR" → 127.0.0.1:N).
	setup func(t *testing.T, dir string) map[string]string
	args  []string
	// want are fragments stderr must hold: where (file and line, flag or
	// path) and what.
	want []string
}

// cfgCase is a case about the configuration: `plan -refresh=false -out`
// must fail pointing at main.dockplan.hcl, the given line and summary,
// and write no plan.
func cfgCase(name string, c badConfig, line int, fragments ...string) badInputCase {
	return badInputCase{
		name:  name,
		files: map[string]string{"main.dockplan.hcl": c.String()},
		args:  []string{"plan", "-refresh=false", "-out", "out.plan"},
		want:  append([]string{fmt.Sprintf("on main.dockplan.hcl line %d", line)}, fragments...),
	}
}

// extraLine is the line badConfig puts extra on.
const extraLine = 15

// TestBadInput feeds dockplan every class of bad input it meets in
// practice (docs/reliability.md lists them). For each: exit code 1, a
// message naming where and what, no panic or stack trace, and nothing
// written (the state and plan files are byte for byte what they were, or
// still absent).
func TestBadInput(t *testing.T) {
	classes := []struct {
		name  string
		cases []badInputCase
	}{
		{"malformed HCL", malformedHCLCases()},
		{"wrong types", wrongTypeCases()},
		{"absurd amounts", absurdAmountCases()},
		{"placement", placementCases()},
		{"malformed values", malformedValueCases()},
		{"state file", stateFileCases()},
		{"saved plan", savedPlanCases()},
		{"hosts", hostCases()},
		{"flags", flagCases()},
	}
	for _, class := range classes {
		t.Run(class.name, func(t *testing.T) {
			for _, tc := range class.cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					runBadInput(t, tc)
				})
			}
		})
	}
}

// malformedHCLCases: files that are not valid HCL or not our schema.
func malformedHCLCases() []badInputCase {
	return []badInputCase{
		{name: "unclosed block", files: map[string]string{"main.dockplan.hcl": "project = \"demo\"\ncontainer \"web\" {\n  image = \"nginx\"\n"},
			args: []string{"validate"}, want: []string{"on main.dockplan.hcl line 2", "Unclosed configuration block"}},
		{name: "not HCL at all", files: map[string]string{"main.dockplan.hcl": "{\"project\": \"demo\"}\n"},
			args: []string{"plan", "-refresh=false", "-out", "out.plan"}, want: []string{"on main.dockplan.hcl line 1"}},
		cfgCase("unknown attribute", badConfig{extra: `imagee = "x"`}, extraLine, "Unsupported argument"),
		{name: "a FIFO named like a configuration file", args: []string{"validate"},
			setup: func(t *testing.T, dir string) map[string]string {
				if err := syscall.Mkfifo(filepath.Join(dir, "extra.dockplan.hcl"), 0o600); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
				return nil
			},
			want: []string{"Cannot read a configuration file", "extra.dockplan.hcl: not a regular file"}},
	}
}

// wrongTypeCases: every main attribute given a value of the wrong type.
func wrongTypeCases() []badInputCase {
	const typeErr = "Incorrect attribute value type"
	return []badInputCase{
		cfgCase("image is a list", badConfig{image: `image = ["nginx"]`}, 13, typeErr, "string required"),
		cfgCase("image is null", badConfig{image: `image = null`}, 13, "Missing value", "image must not be null"),
		cfgCase("count is a string", badConfig{count: `count = "two"`}, 14, typeErr, "a number is required"),
		cfgCase("count is a bool", badConfig{count: `count = true`}, 14, typeErr, "number required"),
		cfgCase("count is a fraction", badConfig{count: `count = 1.5`}, 14, "Invalid number", "whole number"),
		cfgCase("env is a list", badConfig{extra: `env = ["A=1"]`}, extraLine, typeErr, "map of string required"),
		cfgCase("env value is a list", badConfig{extra: `env = { A = [1] }`}, extraLine, typeErr, `element "A"`),
		cfgCase("ports is a string", badConfig{extra: `ports = "8080"`}, extraLine, typeErr, "list of string required"),
		cfgCase("volumes is a map", badConfig{extra: `volumes = { a = "/b" }`}, extraLine, typeErr, "list of string required"),
		cfgCase("restart is a list", badConfig{extra: `restart = ["no"]`}, extraLine, typeErr, "string required"),
		cfgCase("command is a string", badConfig{extra: `command = "serve"`}, extraLine, typeErr, "list of string required"),
		cfgCase("entrypoint is a number", badConfig{extra: `entrypoint = 1`}, extraLine, typeErr, "list of string required"),
		cfgCase("labels is a list", badConfig{extra: `labels = ["a"]`}, extraLine, typeErr, "map of string required"),
		cfgCase("working_dir is an object", badConfig{extra: `working_dir = {}`}, extraLine, typeErr, "string required"),
		cfgCase("depends_on is a string", badConfig{extra: `depends_on = "db"`}, extraLine, "static list expression is required"),
		cfgCase("image_source is unknown", badConfig{extra: `image_source = "ftp"`}, extraLine, "Invalid image source", `not "ftp"`),
		cfgCase("cpu is a word", badConfig{extra: `resources { cpu = "lots" }`}, extraLine, typeErr, "a number is required"),
		cfgCase("memory is a bool", badConfig{extra: `resources { memory = true }`}, extraLine, "Invalid memory size", `"true" is not a memory size`),
		cfgCase("placement hosts is a string", badConfig{extra: `placement { hosts = "node1" }`}, extraLine, typeErr, "list of string required"),
		cfgCase("distinct_hosts is a word", badConfig{extra: `placement { distinct_hosts = "maybe" }`}, extraLine, typeErr, "a bool is required"),
		cfgCase("health command is a string", badConfig{extra: `health { command = "true" }`}, extraLine, typeErr, "list of string required"),
		cfgCase("host labels is a list", badConfig{hostExtra: `labels = ["a"]`}, 9, typeErr, "map of string required"),
		cfgCase("insecure is a word", badConfig{hostExtra: `insecure = "yes"`}, 9, typeErr, "a bool is required"),
		cfgCase("public address is a list", badConfig{hostExtra: `public_address = ["x"]`}, 9, typeErr, "string required"),
		{name: "a number variable given a word", files: map[string]string{"main.dockplan.hcl": badConfig{
			count: `count = var.n`, variables: "variable \"n\" {\n  type = number\n}\n"}.String()},
			args: []string{"plan", "-refresh=false", "-var", "n=abc"}, want: []string{"Invalid value for variable", "-var"}},
	}
}

// absurdAmountCases: negative, zero and absurd resources and counts.
func absurdAmountCases() []badInputCase {
	return []badInputCase{
		cfgCase("negative cpu", badConfig{extra: `resources { cpu = -1 }`}, extraLine, "Invalid CPU amount", "more than zero"),
		cfgCase("zero cpu", badConfig{extra: `resources { cpu = 0 }`}, extraLine, "Invalid CPU amount"),
		cfgCase("absurd cpu", badConfig{extra: `resources { cpu = 1e9 }`}, extraLine, "Invalid CPU amount", "1024"),
		cfgCase("cpu finer than a millicore", badConfig{extra: `resources { cpu = 0.0001 }`}, extraLine, "Invalid CPU amount", "thousandth"),
		cfgCase("cpu below Docker's minimum", badConfig{extra: `resources { cpu = 0.005 }`}, extraLine, "Invalid CPU amount", "minimum of 0.01"),
		cfgCase("zero memory", badConfig{extra: `resources { memory = "0" }`}, extraLine, "Invalid memory size", "more than zero"),
		cfgCase("absurd memory", badConfig{extra: `resources { memory = "999999TiB" }`}, extraLine, "Invalid memory size", "64TiB"),
		cfgCase("memory below Docker's minimum", badConfig{extra: `resources { memory = "1MiB" }`}, extraLine, "Invalid memory size"),
		cfgCase("negative count", badConfig{count: `count = -1`}, 14, "Value out of range", "from 0 to 1000, not -1"),
		cfgCase("absurd count", badConfig{count: `count = 1e9`}, 14, "Value out of range", "not 1000000000"),
		cfgCase("overflowing count", badConfig{count: `count = 1e400`}, 14, "Invalid number"),
		cfgCase("negative retries", badConfig{extra: "health {\n    command = [\"CMD\", \"true\"]\n    retries = -1\n  }"}, extraLine+2, "Value out of range"),
		cfgCase("reserve as large as the capacity", badConfig{hostExtra: `reserve { cpu = 2 }`}, 3, "Reserve exceeds capacity"),
		// Expressions that would build values too large to hold: each
		// used to end with Go's "fatal error: out of memory".
		cfgCase("setproduct of a billion", badConfig{extra: `labels = { n = length(setproduct(range(1024), range(1024), range(1024))) }`}, extraLine,
			`Call to function "setproduct" failed`, "would make 1073741824 elements"),
		cfgCase("indent by 100 billion", badConfig{extra: `labels = { n = indent(99999999999, "a\nb") }`}, extraLine,
			`Call to function "indent" failed`, "more than the 64MiB"),
		cfgCase("join of a gigabyte", badConfig{extra: `labels = { n = join("", [for i in range(100): format("%0999999d", i)]) }`}, extraLine,
			`Call to function "join" failed`, "the arguments of join()"),
	}
}

// placementCases: placements that name nothing or cannot fit.
func placementCases() []badInputCase {
	return []badInputCase{
		cfgCase("unknown host in placement", badConfig{extra: `placement { hosts = ["ghost"] }`}, extraLine,
			"Reference to undeclared host", `names "ghost"`, `Declared hosts: "node1"`),
		{name: "capacity too small", files: map[string]string{"main.dockplan.hcl": badConfig{
			count: `count = 9`, extra: `resources { cpu = 0.5 }`}.String()},
			args: []string{"plan", "-refresh=false", "-out", "out.plan"},
			want: []string{"cannot place every container", "web[4]: no host fits: node1 cpu (needs 0.5, 0 free)"}},
		{name: "capacity unknown offline", files: map[string]string{"main.dockplan.hcl": badConfig{noCap: true}.String()},
			args: []string{"plan", "-refresh=false", "-out", "out.plan"},
			want: []string{"cannot place every container", "node1 capacity unknown (-refresh=false and no capacity block)"}},
	}
}

// malformedValueCases: ports, volumes, durations, memory sizes, images and
// files written wrong.
func malformedValueCases() []badInputCase {
	return []badInputCase{
		cfgCase("port out of range", badConfig{extra: `ports = ["99999"]`}, extraLine, "Invalid port", "outside 1-65535"),
		cfgCase("port of too many parts", badConfig{extra: `ports = ["a:b:c:d"]`}, extraLine, "Invalid port", `"a:b:c:d" is not of the form`),
		cfgCase("port protocol", badConfig{extra: `ports = ["8080/sctp"]`}, extraLine, "Invalid port", "use /tcp or /udp"),
		cfgCase("port range", badConfig{extra: `ports = ["8000-8010"]`}, extraLine, "Invalid port"),
		cfgCase("relative bind mount", badConfig{extra: `volumes = ["conf:/etc/x", "rel/path:/x"]`}, extraLine, "Invalid volume", "relative paths mean nothing on a remote host"),
		cfgCase("relative volume target", badConfig{extra: `volumes = ["/a:relative"]`}, extraLine, "Invalid volume", "must be absolute"),
		cfgCase("volume mode", badConfig{extra: `volumes = ["/a:/b:rx"]`}, extraLine, "Invalid volume", `mode "rx"`),
		cfgCase("duration without unit", badConfig{extra: `stop_timeout = 30`}, extraLine, "Invalid duration", "write a number with a unit"),
		cfgCase("duration of a strange unit", badConfig{extra: `stop_timeout = "30 parsecs"`}, extraLine, "Invalid duration"),
		cfgCase("negative duration", badConfig{extra: `stop_timeout = "-5s"`}, extraLine, "Invalid duration", "is negative"),
		cfgCase("absurd duration", badConfig{extra: `stop_timeout = "100h"`}, extraLine, "Invalid duration", "24h maximum"),
		cfgCase("memory of an unknown unit", badConfig{extra: `resources { memory = "12 bananas" }`}, extraLine, "Invalid memory size", "unknown unit"),
		cfgCase("memory as a fraction of bytes", badConfig{extra: `resources { memory = 1.5 }`}, extraLine, "Invalid memory size", "whole number of bytes"),
		cfgCase("image in upper case", badConfig{image: `image = "NGINX:latest"`}, 13, "Invalid image reference", "must be lowercase"),
		cfgCase("image with two colons", badConfig{image: `image = "nginx::1"`}, 13, "Invalid image reference"),
		cfgCase("image empty", badConfig{image: `image = ""`}, 13, "Invalid image reference"),
		// /dev/null stands in for /dev/zero: the same refusal, and a
		// regression fails instead of reading until memory runs out.
		cfgCase("file() of a device", badConfig{extra: `env = { A = file("/dev/null") }`}, extraLine, "cannot read /dev/null: not a regular file"),
		cfgCase("file() that does not exist", badConfig{extra: `env = { A = file("missing.txt") }`}, extraLine, "missing.txt: no such file or directory"),
	}
}

// stateFileCases: a state file that is corrupt, newer, of another project,
// empty or inconsistent; plan, apply and destroy must all refuse it
// untouched.
func stateFileCases() []badInputCase {
	stateCase := func(name, content string, args []string, fragments ...string) badInputCase {
		return badInputCase{name: name, args: args, want: fragments,
			files: map[string]string{"dockplan.state.json": content}}
	}
	offline := []string{"plan", "-refresh=false", "-out", "out.plan"}
	const lin = "0c0ffee0-0000-4000-8000-000000000001"
	return []badInputCase{
		stateCase("corrupt state", `{"format_version": 1, "lineage": "`+lin+`", "ser`, offline,
			"state file dockplan.state.json", "invalid JSON at byte", "restore it from dockplan.state.json.backup"),
		stateCase("corrupt state on apply", `{"format_version": 1, "lineage": "`+lin+`", "ser`, []string{"apply", "-auto-approve"},
			"state file dockplan.state.json", "invalid JSON"),
		stateCase("state of a newer format", `{"format_version": 7, "lineage": "`+lin+`"}`, offline,
			"state file dockplan.state.json", "format 7, this dockplan reads up to 1", "the file is left untouched"),
		stateCase("state of a newer format on apply", `{"format_version": 7, "lineage": "`+lin+`"}`, []string{"destroy", "-auto-approve"},
			"format 7, this dockplan reads up to 1"),
		stateCase("state of another project", `{"format_version":1,"lineage":"`+lin+`","serial":1,"project":"other","instances":{}}`, offline,
			`state file dockplan.state.json belongs to project "other", but the configuration is project "demo"`),
		stateCase("state of another project on apply", `{"format_version":1,"lineage":"`+lin+`","serial":1,"project":"other","instances":{}}`,
			[]string{"apply", "-auto-approve"}, `belongs to project "other"`),
		stateCase("empty state", "", offline, "state file dockplan.state.json", "the file is empty"),
		stateCase("state of the wrong JSON type", `[]`, offline, "the top level holds a JSON array where an object belongs"),
		stateCase("state with a field of the wrong type", `{"format_version":1,"lineage":"`+lin+`","serial":"7"}`, offline,
			`"serial" holds a JSON string where a whole number within range belongs`),
		stateCase("state with a broken invariant", `{"format_version":1,"lineage":"`+lin+`","serial":1,"project":"demo","instances":{"web[0]":{"address":"web[9]","host":"node1","name":"demo-web-0"}}}`,
			offline, `instance "web[0]" records address "web[9]"`),
		stateCase("state path is a directory", "", []string{"plan", "-refresh=false", "-state", "."}, "state file .", "is a directory"),
	}
}

// savedPlanCases: plans made by the real binary, then damaged, given to
// show and apply.
func savedPlanCases() []badInputCase {
	savedPlan := func(name string, damage func([]byte) []byte, args []string, fragments ...string) badInputCase {
		return badInputCase{name: name, args: args, want: fragments,
			setup: func(t *testing.T, dir string) map[string]string {
				if _, stderr, code := runDockplan(t, dir, "plan", "-refresh=false", "-out", "good.plan"); code != 0 {
					t.Fatalf("making the plan to damage: exit %d: %s", code, stderr)
				}
				data, err := os.ReadFile(filepath.Join(dir, "good.plan"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "bad.plan"), damage(data), 0o600); err != nil {
					t.Fatal(err)
				}
				return nil
			}}
	}
	truncate := func(b []byte) []byte { return b[:len(b)/2] }
	tamper := func(b []byte) []byte { return bytes.Replace(b, []byte("nginx:1.25"), []byte("nginx:6.66"), 1) }
	var cases []badInputCase
	for _, cmd := range []string{"show", "apply"} {
		cases = append(cases,
			savedPlan(cmd+" of a truncated plan", truncate, []string{cmd, "bad.plan"},
				"bad.plan", "truncated (unexpected EOF)", "make a new one with dockplan plan -out bad.plan"),
			savedPlan(cmd+" of a tampered plan", tamper, []string{cmd, "bad.plan"},
				"bad.plan", "its checksum does not match: the file was truncated or edited"),
			savedPlan(cmd+" of an empty plan", func([]byte) []byte { return nil }, []string{cmd, "bad.plan"},
				"bad.plan", "the file is empty"),
			savedPlan(cmd+" of a configuration file", func(b []byte) []byte { return b }, []string{cmd, "main.dockplan.hcl"},
				"main.dockplan.hcl is not a plan file", "give the file that dockplan plan -out wrote"),
			savedPlan(cmd+" of a missing plan", func(b []byte) []byte { return b }, []string{cmd, "none.plan"},
				"cannot read the plan file none.plan: no such file or directory"),
		)
	}
	return cases
}

// hostCases: an unknown scheme, plain tcp:// off loopback, a missing TLS
// file, a refused port, a host that accepts and never answers.
func hostCases() []badInputCase {
	return []badInputCase{
		cfgCase("unknown host scheme", badConfig{addr: "ftp://127.0.0.1:21"}, 4, "Invalid host address", `the scheme "ftp" is not supported`),
		cfgCase("address without scheme", badConfig{addr: "127.0.0.1:2375"}, 4, "Invalid host address"),
		cfgCase("plain tcp off loopback", badConfig{addr: "tcp://192.0.2.10:2375"}, 4, "Invalid host address", "insecure = true"),
		cfgCase("tls on ssh", badConfig{addr: "ssh://root@127.0.0.1", hostExtra: "tls {\n    ca_file = \"ca.pem\"\n    cert_file = \"cert.pem\"\n    key_file = \"key.pem\"\n  }"}, 4,
			"Invalid host address", "a tls block applies only to tcp://"),
		{name: "missing TLS file", files: map[string]string{"main.dockplan.hcl": badConfig{addr: "tcp://127.0.0.1:2376",
			hostExtra: "tls {\n    ca_file = \"certs/ca.pem\"\n    cert_file = \"certs/cert.pem\"\n    key_file = \"certs/key.pem\"\n  }"}.String()},
			args: []string{"plan", "-out", "out.plan"},
			want: []string{`Host node1 did not answer`, "TLS CA file certs/ca.pem does not exist"}},
		{name: "missing TLS file in hosts", files: map[string]string{"main.dockplan.hcl": badConfig{addr: "tcp://127.0.0.1:2376",
			hostExtra: "tls {\n    ca_file = \"certs/ca.pem\"\n    cert_file = \"certs/cert.pem\"\n    key_file = \"certs/key.pem\"\n  }"}.String()},
			args: []string{"hosts"}, want: []string{"1 of 1 hosts did not answer"}},
		{name: "refused host", setup: refusedHost, args: []string{"plan", "-probe-timeout", "5s", "-out", "out.plan"},
			want: []string{"Host node1 did not answer", "tcp://ADDR"}},
		{name: "refused host on apply", setup: refusedHost, args: []string{"apply", "-auto-approve", "-probe-timeout", "5s"},
			want: []string{"Host node1 did not answer", "tcp://ADDR"}},
		{name: "silent host", setup: silentHost, args: []string{"plan", "-probe-timeout", "1s", "-out", "out.plan"},
			want: []string{"Host node1 did not answer", "no answer from tcp://ADDR within 1s"}},
		{name: "silent host in hosts", setup: silentHost, args: []string{"hosts", "-probe-timeout", "1s"},
			want: []string{"1 of 1 hosts did not answer"}},
	}
}

// flagCases: flag values that make no sense.
func flagCases() []badInputCase {
	return []badInputCase{
		{name: "probe timeout of no unit", args: []string{"plan", "-probe-timeout", "10"}, want: []string{`invalid argument "10" for "--probe-timeout"`}},
		{name: "probe timeout of zero", args: []string{"plan", "-probe-timeout", "0s"}, want: []string{"-probe-timeout=0s must be more than zero"}},
		{name: "unknown format", args: []string{"plan", "-refresh=false", "-format", "xml"}, want: []string{"-format=xml is not a format"}},
		{name: "parallelism of zero", args: []string{"apply", "-parallelism", "0"}, want: []string{"-parallelism=0 must be at least 1"}},
		{name: "replace of an undeclared instance", args: []string{"plan", "-refresh=false", "-replace", "web[9]"},
			want: []string{`-replace=web[9]: the configuration declares no instance "web[9]"`}},
		{name: "replace with a saved plan", args: []string{"apply", "-replace", "web[0]", "some.plan"},
			want: []string{"-replace applies to the plan apply makes"}},
		{name: "replace with destroy", args: []string{"destroy", "-replace", "web[0]"}, want: []string{"unknown flag: --replace"}},
		{name: "unknown image source", args: []string{"plan", "-refresh=false", "-image-source", "ftp"}, want: []string{"-image-source=ftp is not a source"}},
		{name: "undeclared variable", args: []string{"plan", "-refresh=false", "-var", "nope=1"}, want: []string{"Value for undeclared variable", `"nope"`}},
		{name: "missing var file", args: []string{"plan", "-refresh=false", "-var-file", "missing.hcl"}, want: []string{"-var-file missing.hcl: no such file or directory"}},
		{name: "var file that is a device", args: []string{"plan", "-refresh=false", "-var-file", "/dev/null"}, want: []string{"-var-file /dev/null: not a regular file"}},
		{name: "plan file into a missing folder", args: []string{"plan", "-refresh=false", "-out", "no/such/dir/p.plan"},
			want: []string{"cannot write the plan to no/such/dir/p.plan"}},
		{name: "reschedule-after without daemon", args: []string{"reconcile", "-reschedule-after", "1m"},
			want: []string{"-reschedule-after is for the daemon", "use it with -daemon"}},
		{name: "reschedule-after negative", args: []string{"reconcile", "-daemon", "-reschedule-after", "-1m"},
			want: []string{"-reschedule-after must not be negative"}},
		{name: "reschedule-after too short", args: []string{"reconcile", "-daemon", "-reschedule-after", "100ms"},
			want: []string{"-reschedule-after=100ms is too short", "use 1s or more"}},
		{name: "chdir to nowhere", args: []string{"-chdir=nowhere", "plan"}, want: []string{"-chdir=nowhere: no such file or directory"}},
	}
}

func runBadInput(t *testing.T, tc badInputCase) {
	dir := t.TempDir()
	files := map[string]string{"main.dockplan.hcl": badConfig{}.String()}
	for name, content := range tc.files {
		files[name] = content
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	repl := map[string]string{}
	if tc.setup != nil {
		repl = tc.setup(t, dir)
	}
	replace := func(s string) string {
		for k, v := range repl {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	args := make([]string, len(tc.args))
	for i, a := range tc.args {
		args[i] = replace(a)
	}
	before := snapshotDir(t, dir)
	stdout, stderr, code := runDockplan(t, dir, args...)
	if code != ExitError {
		t.Errorf("exit code %d, want %d", code, ExitError)
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
			t.Errorf("dockplan crashed:\n%s", out)
		}
	}
	if !strings.Contains(stderr, "Error") {
		t.Errorf("stderr does not say Error:\n%s", stderr)
	}
	for _, w := range tc.want {
		if w = replace(w); !strings.Contains(stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, stderr)
		}
	}
	after := snapshotDir(t, dir)
	for _, problem := range compareDirs(before, after) {
		t.Errorf("dockplan %s: %s", strings.Join(args, " "), problem)
	}
}

// dirEntry is one file's mode and content.
type dirEntry struct {
	mode fs.FileMode
	data string
}

func snapshotDir(t *testing.T, dir string) map[string]dirEntry {
	t.Helper()
	out := map[string]dirEntry{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if !info.Mode().IsRegular() {
			out[rel] = dirEntry{mode: info.Mode()} // a FIFO: reading it would block
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[rel] = dirEntry{mode: info.Mode(), data: string(data)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareDirs lists what changed between two snapshots. The only file a
// failed command may leave is an empty state lock file: apply and destroy
// take the lock before they read the state, and the lock file stays
// (empty) by design, see docs/state-format.md.
func compareDirs(before, after map[string]dirEntry) []string {
	var problems []string
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			problems = append(problems, name+" was removed")
		case a.data != b.data:
			problems = append(problems, name+" was changed")
		case a.mode != b.mode:
			problems = append(problems, fmt.Sprintf("%s changed mode from %v to %v", name, b.mode, a.mode))
		}
	}
	for name, a := range after {
		if _, ok := before[name]; ok {
			continue
		}
		if strings.HasSuffix(name, ".lock") && a.data == "" {
			continue
		}
		problems = append(problems, fmt.Sprintf("%s was written (%d bytes)", name, len(a.data)))
	}
	return problems
}

// runDockplan runs the dockplan binary TestMain put on PATH, in dir, with
// no Docker settings from the environment, and returns its output and exit
// code.
func runDockplan(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runDockplanEnv(t, dir, nil, args...)
}

func runDockplanEnv(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := exec.LookPath("dockplan")
	if err != nil {
		t.Fatalf("dockplan is not on PATH (TestMain puts it there): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST=", "DOCKER_CONTEXT=", "DOCKER_CONFIG="+filepath.Join(dir, ".docker-config"), "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running dockplan: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("dockplan %s did not finish within 2 minutes", strings.Join(args, " "))
	}
	return out.String(), errOut.String(), code
}

// refusedHost points node1 at a loopback port where nothing listens.
func refusedHost(t *testing.T, dir string) map[string]string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	writeConfig(t, dir, badConfig{addr: "tcp://" + addr})
	return map[string]string{"ADDR": addr}
}

// silentHost points node1 at a loopback listener that accepts connections
// and never answers, like a host cut off behind a proxy.
func silentHost(t *testing.T, dir string) map[string]string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	writeConfig(t, dir, badConfig{addr: "tcp://" + l.Addr().String()})
	return map[string]string{"ADDR": l.Addr().String()}
}

func writeConfig(t *testing.T, dir string, c badConfig) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.dockplan.hcl"), []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

package render_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/planner"
	"github.com/dockplan/dockplan/render"
	"github.com/google/go-cmp/cmp"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

func strp(s string) *string { return &s }

// host is a reachable host: CPU in millicores, its memory capacity in GiB
// and its allocations in bytes.
func host(name string, cpuCap, memCapGiB, cpuBefore, cpuAfter int64, memBefore, memAfter int64) *planner.HostPlan {
	return &planner.HostPlan{Name: name, Reachable: true,
		Capacity: planner.Resources{MilliCPU: cpuCap, MemoryBytes: memCapGiB * gib},
		Before:   planner.Resources{MilliCPU: cpuBefore, MemoryBytes: memBefore},
		After:    planner.Resources{MilliCPU: cpuAfter, MemoryBytes: memAfter},
		Fingerprint: planner.HostFingerprint{Capacity: planner.Resources{MilliCPU: cpuCap, MemoryBytes: memCapGiB * gib},
			Containers: []planner.FingerprintContainer{}},
	}
}

// newPlan builds a refreshed plan of project shop and counts its steps as
// the planner does.
func newPlan(hosts []*planner.HostPlan, steps ...*planner.Step) *planner.Plan {
	p := &planner.Plan{FormatVersion: planner.PlanFormatVersion, Project: "shop", Refreshed: true,
		StateLineage: "00000000-0000-4000-8000-000000000001", StateSerial: 7,
		Steps: steps, Hosts: hosts, Warnings: []string{}}
	for _, s := range steps {
		if s.DependsOn == nil {
			s.DependsOn = []string{}
		}
		sum := &p.Summary
		counts := map[planner.Action]*int{planner.Create: &sum.Create, planner.Start: &sum.Start, planner.Update: &sum.Update,
			planner.Replace: &sum.Replace, planner.Move: &sum.Move, planner.Delete: &sum.Delete, planner.Pull: &sum.Pull, planner.Adopt: &sum.Adopt}
		*counts[s.Action]++
	}
	return p
}

func twoHosts() []*planner.HostPlan {
	return []*planner.HostPlan{
		host("node1", 4000, 8, 1500, 2000, 1280*mib, 1536*mib),
		host("node2", 4000, 8, 500, 500, 256*mib, 256*mib),
	}
}

func pullStep(hostName, image, source string) *planner.Step {
	reason := hostName + " lacks the image"
	if source == "local" {
		reason += "; copied from the engine of the machine running dockplan"
	}
	return &planner.Step{ID: "pull " + hostName + " " + image, Action: planner.Pull, Index: -1, Host: hostName,
		Image: image, ImageSource: source, Reason: reason}
}

func createDB() *planner.Step {
	return &planner.Step{ID: "create db", Action: planner.Create, Address: "db", Container: "db", Host: "node1",
		Name: "shop-db-0", Image: "postgres:16", Reason: "new instance",
		Changes: []planner.AttrChange{
			{Path: "env.POSTGRES_PASSWORD", Sensitive: true},
			{Path: "health", After: strp(`["CMD", "pg_isready"] every 5s, timeout default, 3 retries, start period default`)},
			{Path: "image", After: strp("postgres:16")},
			{Path: "ports", After: strp("5432:5432/tcp")},
			{Path: "resources.cpu", After: strp("1")},
			{Path: "resources.memory", After: strp("1GiB")},
			{Path: "restart", After: strp("unless-stopped")},
		},
		Resources: planner.Resources{MilliCPU: 1000, MemoryBytes: gib},
		Placement: &planner.PlacementNote{Strategy: "spread", Score: 0.8125, RejectedCount: 1,
			Rejected: []planner.Rejection{{Host: "node2", Reasons: []string{"labels (disk=ssd)"}}}},
	}
}

func createWeb(hostName string) *planner.Step {
	return &planner.Step{ID: "create web[1]", Action: planner.Create, Address: "web[1]", Container: "web", Index: 1,
		Host: hostName, Name: "shop-web-1", Image: "shop/web:1", Reason: "new instance",
		DependsOn: []string{"create api[0]"},
		Changes: []planner.AttrChange{
			{Path: "command", After: strp(`["serve", "--port", "8080"]`)},
			{Path: "env.API_ADDR", AfterUnknown: true},
			{Path: "env.SESSION_KEY", Sensitive: true, AfterUnknown: true},
			{Path: "image", After: strp("shop/web:1")},
			{Path: "resources.memory", After: strp("256MiB")},
		},
		Resources: planner.Resources{MemoryBytes: 256 * mib},
		Placement: &planner.PlacementNote{Strategy: "spread", Score: 0.84, RunnerUp: "node2", RunnerUpScore: 0.79},
	}
}

func startCache() *planner.Step {
	return &planner.Step{ID: "start cache", Action: planner.Start, Address: "cache", Container: "cache", Host: "node1",
		Name: "shop-cache-0", OldContainerID: "4f1c2e9a7b3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
		Reason: "is exited; started", Drifted: true}
}

func updateAPI() *planner.Step {
	return &planner.Step{ID: "update api[1]", Action: planner.Update, Address: "api[1]", Container: "api", Index: 1,
		Host: "node1", Name: "shop-api-1", OldContainerID: "id0003",
		Reason: "limits or restart policy changed; updated in place",
		Changes: []planner.AttrChange{
			{Path: "resources.memory", Before: strp("256MiB"), After: strp("512MiB")},
			{Path: "restart", Before: strp("no"), After: strp("on-failure:3")},
		},
		Resources: planner.Resources{MilliCPU: 500, MemoryBytes: 512 * mib}}
}

// replaceAPI replaces api[0]: a new image, a link address known only
// after apply, a sensitive value changed and an env variable removed.
func replaceAPI(cbd bool) *planner.Step {
	return &planner.Step{ID: "replace api[0]", Action: planner.Replace, Address: "api[0]", Container: "api",
		Host: "node2", Name: "shop-api-0", Image: "shop/api:2", OldContainerID: "id0002",
		Reason: "forces replacement: env.DB_ADDR, env.DEBUG, image", ForcedBy: []string{"env.DB_ADDR", "env.DEBUG", "image"},
		CreateBeforeDestroy: cbd, DependsOn: []string{"create db"}, WaitHealthy: []string{"db"},
		Changes: []planner.AttrChange{
			{Path: "env.API_TOKEN", Sensitive: true, ForcesReplacement: true},
			{Path: "env.DB_ADDR", Before: strp("10.0.0.1:5432"), AfterUnknown: true, ForcesReplacement: true},
			{Path: "env.DEBUG", Before: strp("1"), ForcesReplacement: true},
			{Path: "image", Before: strp("shop/api:1"), After: strp("shop/api:2"), ForcesReplacement: true},
		},
		Resources: planner.Resources{MilliCPU: 500, MemoryBytes: 256 * mib}}
}

// replaceHash is a replace forced by the config hash alone: no attribute
// change to show.
func replaceHash() *planner.Step {
	forced := "config-hash (the container's label no longer matches its recorded configuration)"
	return &planner.Step{ID: "replace worker[0]", Action: planner.Replace, Address: "worker[0]", Container: "worker",
		Host: "node2", Name: "shop-worker-0", Image: "shop/worker:1", OldContainerID: "id0007",
		Reason: "forces replacement: " + forced, ForcedBy: []string{forced}, CreateBeforeDestroy: true}
}

func moveWeb() *planner.Step {
	return &planner.Step{ID: "move web[0]", Action: planner.Move, Address: "web[0]", Container: "web",
		Host: "node2", FromHost: "node1", Name: "shop-web-0", Image: "shop/web:1", OldContainerID: "id0005",
		Reason: "no longer fits on node1", CreateBeforeDestroy: true,
		Changes: []planner.AttrChange{
			{Path: "host", Before: strp("node1"), After: strp("node2"), ForcesReplacement: true},
		},
		Resources: planner.Resources{MemoryBytes: 256 * mib},
		Placement: &planner.PlacementNote{Strategy: "spread", Score: 0.921875, RunnerUp: "node3", RunnerUpScore: 0.921875, RejectedCount: 1,
			Rejected: []planner.Rejection{{Host: "node1", Reasons: []string{"memory (needs 256MiB, 100MiB free)"}}}},
	}
}

func deleteAPI() *planner.Step {
	return &planner.Step{ID: "delete api[2] node2", Action: planner.Delete, Address: "api[2]", Container: "api", Index: 2,
		Host: "node2", FromHost: "node2", Name: "shop-api-2", Image: "shop/api:1", OldContainerID: "id0004",
		Reason:  "is no longer in the configuration",
		Changes: []planner.AttrChange{{Path: "image", Before: strp("shop/api:1")}}}
}

// deleteGone deletes a record on a host the configuration dropped.
func deleteGone() *planner.Step {
	return &planner.Step{ID: "delete old[0] node9", Action: planner.Delete, Address: "old[0]", Container: "old",
		Host: "node9", FromHost: "node9", Name: "shop-old-0", Image: "shop/old:1",
		Reason: "is no longer in the configuration; host node9 is no longer in the configuration, so the container there is left alone and only forgotten"}
}

func adoptWorker() *planner.Step {
	return &planner.Step{ID: "adopt worker[1]", Action: planner.Adopt, Address: "worker[1]", Container: "worker", Index: 1,
		Host: "node2", Name: "shop-worker-1", OldContainerID: "id0008",
		Reason: "found by its labels and matches the configuration; recorded in the state"}
}

// placementPlan shows the ways a placement note names the other hosts:
// some listed, more than the text lists, only counted, and none at all.
func placementPlan() *planner.Plan {
	var rejected []planner.Rejection
	for i := 3; i <= 9; i++ {
		rejected = append(rejected, planner.Rejection{Host: fmt.Sprintf("node%d", i), Reasons: []string{"unreachable"}})
	}
	notes := []*planner.PlacementNote{
		{Strategy: "binpack", Score: 0.5, RunnerUp: "node2", RunnerUpScore: 0.25, RejectedCount: len(rejected), Rejected: rejected},
		{Strategy: "spread", Score: 0.7, RunnerUp: "node2", RunnerUpScore: 0.6, RejectedCount: 40},
		{Strategy: "spread", Score: 1},
	}
	var steps []*planner.Step
	for i, pn := range notes {
		s := createWeb("node1")
		s.ID, s.Address, s.Index, s.Name, s.Changes, s.Placement = fmt.Sprintf("create web[%d]", i), fmt.Sprintf("web[%d]", i), i,
			fmt.Sprintf("shop-web-%d", i), []planner.AttrChange{{Path: "image", After: strp("shop/web:1")}}, pn
		steps = append(steps, s)
	}
	return newPlan(twoHosts(), steps...)
}

// fullPlan has every action, on three declared hosts and one dropped one.
func fullPlan() *planner.Plan {
	hosts := append(twoHosts(), host("node3", 1000, 1, 0, 0, 0, 0))
	p := newPlan(hosts,
		pullStep("node2", "shop/api:2", "registry"), pullStep("node1", "shop/web:1", "local"),
		deleteAPI(), deleteGone(), createDB(), replaceAPI(true), updateAPI(), startCache(),
		moveWeb(), createWeb("node1"), replaceHash(), adoptWorker())
	p.Warnings = []string{"old[0] was on host node9, which is no longer in the configuration: the old container there is left alone."}
	return p
}

func TestPlanText(t *testing.T) {
	offline := newPlan(twoHosts(), createWeb("node1"))
	offline.Refreshed = false
	offline.Warnings = []string{"Host node2 is unreachable: nothing is placed there and its instances are not checked (dial tcp 10.0.0.12:2376: i/o timeout).",
		"A warning\nover two lines with a \x1b[31mcolour\x1b[0m escape."}
	offline.Hosts[1].Reachable = false
	quiet := newPlan(twoHosts())
	quiet.Warnings = []string{"Host node2 is unreachable: its instances are not checked."}
	tests := []struct {
		name string
		plan *planner.Plan
	}{
		{"create", newPlan(twoHosts(), pullStep("node1", "postgres:16", "registry"), createDB(), createWeb("node1"))},
		{"start", newPlan(twoHosts(), startCache())},
		{"update", newPlan(twoHosts(), updateAPI())},
		{"replace", newPlan(twoHosts(), replaceAPI(false))},
		{"replace_cbd", newPlan(twoHosts(), replaceAPI(true), replaceHash())},
		{"move", newPlan(twoHosts(), moveWeb())},
		{"delete", newPlan(twoHosts(), deleteAPI(), deleteGone())},
		{"pull", newPlan(twoHosts(), pullStep("node1", "shop/web:1", "local"), pullStep("node2", "redis:7", "registry"))},
		{"adopt", newPlan(twoHosts(), adoptWorker())},
		{"placement", placementPlan()},
		{"no_changes", newPlan(twoHosts())},
		{"no_changes_warnings", quiet},
		{"refresh_false", offline},
		{"all", fullPlan()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render.PlanText(&buf, tt.plan, render.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			golden(t, "plan_"+tt.name, buf.Bytes())
			if strings.Contains(buf.String(), "\x1b") {
				t.Errorf("plain output has an escape sequence:\n%q", buf.String())
			}
		})
	}
}

func TestPlanMarkdown(t *testing.T) {
	offline := newPlan(twoHosts())
	offline.Refreshed = false
	offline.Warnings = []string{"Host node2 has <b>no</b> capacity block: it receives no new instances."}
	tests := []struct {
		name string
		plan *planner.Plan
	}{
		{"all", fullPlan()},
		{"no_changes", offline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := render.PlanMarkdown(&buf, tt.plan); err != nil {
				t.Fatal(err)
			}
			golden(t, "plan_"+tt.name+".md", buf.Bytes())
			if strings.Contains(buf.String(), "<b>") {
				t.Errorf("a warning's HTML reached the Markdown:\n%s", buf.String())
			}
		})
	}
}

func TestPlanJSON(t *testing.T) {
	p := fullPlan()
	var buf bytes.Buffer
	if err := render.PlanJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	golden(t, "plan_all.json", buf.Bytes())
	var back planner.Plan
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, &back); diff != "" {
		t.Errorf("JSON does not read back as the plan (-plan +read):\n%s", diff)
	}
}

func TestPlanJSONEmptyLists(t *testing.T) {
	p := &planner.Plan{Refreshed: true, Steps: []*planner.Step{{ID: "start cache", Action: planner.Start, Address: "cache"}},
		Hosts: []*planner.HostPlan{{Name: "node1"}}}
	var buf bytes.Buffer
	if err := render.PlanJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"format_version": "1.0"`, `"warnings": []`, `"depends_on": []`, `"containers": []`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "null") {
		t.Errorf("JSON has a null list:\n%s", buf.String())
	}
	if p.Warnings != nil || p.Steps[0].DependsOn != nil {
		t.Error("PlanJSON changed the plan it was given")
	}
}

func TestPlanTextColor(t *testing.T) {
	var buf bytes.Buffer
	if err := render.PlanText(&buf, fullPlan(), render.TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"\x1b[32m+\x1b[0m container", "\x1b[33m~\x1b[0m container", "\x1b[31m-\x1b[0m container",
		"\x1b[32m+\x1b[0m/\x1b[31m-\x1b[0m container", "\x1b[1;33mWarning:"} {
		if !strings.Contains(out, want) {
			t.Errorf("colour output lacks %q", want)
		}
	}
}

// canary is a secret that must never reach any output.
const canary = "CANARY-s3cr3t-7f9d"

// TestSensitiveNeverShown renders plans whose sensitive changes hold the
// canary in every place a value can be (as a planner bug would leave
// them), and checks that no format prints it.
func TestSensitiveNeverShown(t *testing.T) {
	var steps []*planner.Step
	for i, a := range []planner.Action{planner.Create, planner.Update, planner.Replace, planner.Move, planner.Delete} {
		steps = append(steps, &planner.Step{ID: fmt.Sprint(i), Action: a, Address: fmt.Sprintf("s[%d]", i), Host: "node1",
			FromHost: "node2", Name: "shop-s-" + fmt.Sprint(i), Changes: []planner.AttrChange{
				{Path: "env.NIL", Sensitive: true},
				{Path: "env.BOTH", Sensitive: true, Before: strp(canary), After: strp(canary + "-new"), ForcesReplacement: true},
				{Path: "env.UNKNOWN", Sensitive: true, Before: strp(canary), AfterUnknown: true},
			}})
	}
	p := newPlan(twoHosts(), steps...)
	renders := map[string]func(*bytes.Buffer) error{
		"text":     func(b *bytes.Buffer) error { return render.PlanText(b, p, render.TextOptions{}) },
		"color":    func(b *bytes.Buffer) error { return render.PlanText(b, p, render.TextOptions{Color: true}) },
		"markdown": func(b *bytes.Buffer) error { return render.PlanMarkdown(b, p) },
		"json":     func(b *bytes.Buffer) error { return render.PlanJSON(b, p) },
	}
	for _, name := range []string{"text", "color", "markdown", "json"} {
		var buf bytes.Buffer
		if err := renders[name](&buf); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), canary) {
			t.Errorf("%s output shows a sensitive value:\n%s", name, buf.String())
		}
		if name != "json" && strings.Count(buf.String(), "(sensitive value)") != 3*len(steps) {
			t.Errorf("%s output has %d placeholders, want %d:\n%s", name, strings.Count(buf.String(), "(sensitive value)"), 3*len(steps), buf.String())
		}
	}
	if *p.Steps[0].Changes[1].Before != canary {
		t.Error("PlanJSON changed the plan it was given")
	}
}

// valueRE is everything an attribute line may say after "=": quoted
// strings, the placeholders, and null, joined by "->".
var valueRE = regexp.MustCompile(`^("(?:[^"\\]|\\.)*"|\(known after apply\)|\(sensitive value\)|null)` +
	`(?: -> ("(?:[^"\\]|\\.)*"|\(known after apply\)|null))?( # forces replacement)?$`)

// TestNilValues renders every combination of absent, unknown and
// sensitive values under every container action, and checks that each
// attribute line says only the values the change holds, or placeholders.
func TestNilValues(t *testing.T) {
	actions := []planner.Action{planner.Create, planner.Start, planner.Update, planner.Replace, planner.Move, planner.Delete, planner.Adopt}
	for _, a := range actions {
		for combo := 0; combo < 16; combo++ {
			ch := planner.AttrChange{Path: "env.X", AfterUnknown: combo&4 != 0, Sensitive: combo&8 != 0}
			if combo&1 != 0 {
				ch.Before = strp("before value")
			}
			if combo&2 != 0 {
				ch.After = strp("after value")
			}
			s := &planner.Step{ID: "s", Action: a, Address: "s", Host: "node1", FromHost: "node2", Changes: []planner.AttrChange{ch}}
			var buf bytes.Buffer
			if err := render.PlanText(&buf, newPlan(twoHosts(), s), render.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			checkValueLine(t, fmt.Sprintf("%s %+v", a, ch), buf.String(), ch)
		}
	}
}

func checkValueLine(t *testing.T, name, out string, ch planner.AttrChange) {
	t.Helper()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " env.X = ") {
			line = l
		}
	}
	_, val, ok := strings.Cut(line, " env.X = ")
	if !ok {
		t.Fatalf("%s: no attribute line in:\n%s", name, out)
	}
	m := valueRE.FindStringSubmatch(val)
	if m == nil {
		t.Fatalf("%s: attribute line %q says something other than values and placeholders", name, line)
	}
	allowed := map[string]bool{}
	if !ch.Sensitive {
		for _, v := range []*string{ch.Before, ch.After} {
			if v != nil {
				allowed[strconv.Quote(*v)] = true
			}
		}
	}
	for _, tok := range m[1:3] {
		if strings.HasPrefix(tok, `"`) && !allowed[tok] {
			t.Errorf("%s: line %q shows %s, which the change does not hold", name, line, tok)
		}
	}
	if ch.Sensitive != strings.Contains(val, "(sensitive value)") {
		t.Errorf("%s: line %q: sensitive placeholder shown = %v, want %v", name, line, !ch.Sensitive, ch.Sensitive)
	}
}

func TestPlanNil(t *testing.T) {
	var buf bytes.Buffer
	if render.PlanText(&buf, nil, render.TextOptions{}) == nil || render.PlanMarkdown(&buf, nil) == nil || render.PlanJSON(&buf, nil) == nil {
		t.Error("rendering no plan did not fail")
	}
}

// TestPlanFormatDocExample checks that the example in docs/plan-format.md
// is what PlanJSON and PlanText really print for it.
func TestPlanFormatDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/plan-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, _ := strings.Cut(string(doc), "## Example\n")
	_, jsonPart, _ := strings.Cut(example, "```json\n")
	jsonDoc, rest, _ := strings.Cut(jsonPart, "```\n")
	_, textPart, _ := strings.Cut(rest, "```\n")
	textDoc, _, _ := strings.Cut(textPart, "```\n")
	var p planner.Plan
	if err := json.Unmarshal([]byte(jsonDoc), &p); err != nil {
		t.Fatalf("the example is not a plan: %v", err)
	}
	var buf bytes.Buffer
	if err := render.PlanJSON(&buf, &p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jsonDoc, buf.String()); diff != "" {
		t.Errorf("docs/plan-format.md JSON example (-doc +rendered):\n%s", diff)
	}
	buf.Reset()
	if err := render.PlanText(&buf, &p, render.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(textDoc, buf.String()); diff != "" {
		t.Errorf("docs/plan-format.md text example (-doc +rendered):\n%s", diff)
	}
}

package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockplan/dockplan/hclspec"
)

// prReviewHosts are the pr-review hosts as the simulation probes them: the
// totals are their capacity blocks' (every host declares one), the reach
// addresses those the -refresh=false plan derives from the host blocks.
var prReviewHosts = map[string]hostFacts{
	"node1": {reach: "10.213.0.11"},
	"node2": {reach: "10.213.0.12"},
	"node3": {reach: "10.213.0.13"},
}

// TestPRReviewMarkdownPlan runs the real binary as the pull-request job
// does (plan -refresh=false -format=markdown) on examples/pr-review: first
// with no state, then with the state an apply of that plan leaves, then
// with that state and a new api image.
func TestPRReviewMarkdownPlan(t *testing.T) {
	bin := dockplanBinary(t)
	dir := t.TempDir()
	statePath := filepath.Join(dir, "dockplan.state.json")
	plan := func(t *testing.T, vars ...string) string {
		t.Helper()
		args := append([]string{"-chdir=pr-review", "plan", "-refresh=false", "-format=markdown", "-state", statePath}, vars...)
		stdout, stderr, code := runBinary(t, bin, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("dockplan %s exited %d\nstderr:\n%s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}

	t.Run("no state", func(t *testing.T) {
		md := plan(t)
		wantMarkdownPlan(t, md, "### Plan for pr-review: 6 to create, 0 to update, 0 to replace, 0 to delete.", "| create | 6 |",
			[]string{"node1 — 2 to create", "node2 — 2 to create", "node3 — 2 to create"})
		if strings.Contains(md, "will be pulled") || strings.Contains(md, "will be copied") {
			t.Error("a -refresh=false plan checks no images, but it has pull steps")
		}
	})

	// The state the first plan leaves once carried out (in memory, as the
	// applier would): instances with their hosts, config hashes and the
	// host ports Docker picked.
	s := newSim(t, load(t, "pr-review", hclspec.LoadOptions{}), prReviewHosts)
	s.apply(s.plan())
	data, err := s.st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("state of the last apply", func(t *testing.T) {
		md := plan(t)
		if !strings.HasPrefix(md, "### Plan for pr-review: no changes\n") || !strings.Contains(md, "No changes. The hosts match the configuration.") {
			t.Errorf("a -refresh=false plan right after an apply of the same configuration is not empty:\n%s", md)
		}
	})

	t.Run("new api image", func(t *testing.T) {
		md := plan(t, "-var", "api_image=dockplan-testapp:v2")
		// api's three instances get the new image; web's two follow, as the
		// api host ports they link to are picked again.
		wantMarkdownPlan(t, md, "### Plan for pr-review: 0 to create, 0 to update, 5 to replace, 0 to delete.", "| replace | 5 |",
			[]string{"node1 — 1 to replace", "node2 — 2 to replace", "node3 — 2 to replace"})
		if n := strings.Count(md, "(forces replacement: image)"); n != 3 {
			t.Errorf("%d steps say the image forces replacement, want 3 (the api instances)", n)
		}
		if !strings.Contains(md, `"dockplan-testapp:dev" -> "dockplan-testapp:v2"`) {
			t.Error("the plan does not show the image change")
		}
	})
}

// wantMarkdownPlan checks the parts of a Markdown plan a reviewer relies
// on: the title, the table of counts with the row, the -refresh=false note,
// and one collapsed section per host, each holding a diff block.
func wantMarkdownPlan(t *testing.T, md, title, row string, sections []string) {
	t.Helper()
	if first, _, _ := strings.Cut(md, "\n"); first != title {
		t.Errorf("title = %q, want %q", first, title)
	}
	if !strings.Contains(md, "| Action | Count |\n| --- | ---: |\n") || !strings.Contains(md, "\n"+row+"\n") {
		t.Errorf("no table of counts with %q:\n%s", row, md)
	}
	if !strings.Contains(md, "> **Note:** This plan was made with -refresh=false") {
		t.Error("the plan does not say it was made with -refresh=false")
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^<details><summary>(.*)</summary>$`).FindAllStringSubmatch(md, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, "\n") != strings.Join(sections, "\n") {
		t.Errorf("host sections = %q, want %q", got, sections)
	}
	if n := strings.Count(md, "\n</details>\n"); n != len(sections) {
		t.Errorf("%d sections closed, want %d", n, len(sections))
	}
	if n := strings.Count(md, "\n```diff\n"); n != len(sections) {
		t.Errorf("%d diff blocks, want one per host section (%d)", n, len(sections))
	}
	checkBalanced(t, md)
}

// TestPRReviewFitComment checks fit-comment.sh, the step that makes the
// plan fit in a comment: a plan that fits is kept as it is; a longer one
// is cut between host sections (or, when even the first is too long,
// inside it with the fence and <details> closed), stays under the limit,
// and says what it left out.
func TestPRReviewFitComment(t *testing.T) {
	for _, tool := range []string{"sh", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("fit-comment.sh needs %s: %v", tool, err)
		}
	}
	bin := dockplanBinary(t)
	const marker = "<!-- dockplan-plan: test -->"

	small, stderr, code := runBinary(t, bin, "-chdir=pr-review", "plan", "-refresh=false", "-format=markdown", "-state", filepath.Join(t.TempDir(), "none.json"))
	if code != 0 {
		t.Fatalf("plan exited %d: %s", code, stderr)
	}
	if got := fitComment(t, small, "-m", marker); got != marker+"\n"+small {
		t.Errorf("a plan that fits was changed:\n%s", got)
	}

	big := bigPlan(t, bin)
	if len(big) < 200_000 {
		t.Fatalf("the big plan is only %d bytes", len(big))
	}
	titles := regexp.MustCompile(`(?m)^<details><summary>(.*)</summary>$`).FindAllStringSubmatch(big, -1)
	tests := []struct {
		name    string
		limit   int
		partial bool
	}{
		{name: "GitHub's limit", limit: 65536},
		{name: "first section too long", limit: 8192, partial: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fitComment(t, big, "-m", marker, "-l", fmt.Sprint(tt.limit), "-u", "https://github.com/o/r/actions/runs/1")
			if len(got) > tt.limit {
				t.Errorf("the comment is %d bytes, over the limit %d", len(got), tt.limit)
			}
			if !strings.HasPrefix(got, marker+"\n### Plan for big: 400 to create,") || !strings.Contains(got, "\n| create | 400 |\n") {
				t.Errorf("the marker, the title or the table of counts is missing:\n%.400s", got)
			}
			checkBalanced(t, got)
			body, footer, ok := strings.Cut(got, "\n---\n\n**This plan is too long for one comment**")
			if !ok || !strings.Contains(footer, "[this run](https://github.com/o/r/actions/runs/1)") {
				t.Fatalf("no footer saying the plan was cut and linking the run:\n%s", footer)
			}
			kept := strings.TrimPrefix(body, marker+"\n")
			if tt.partial { // the cut closes the diff block and the section
				kept = strings.TrimSuffix(kept, "```\n</details>\n")
			}
			if !strings.HasPrefix(big, kept) || len(kept) < tt.limit/4 {
				t.Errorf("the comment keeps %d bytes that are not the start of the plan", len(kept))
			}
			shown := strings.Count(body, "<details><summary>")
			if tt.partial != (shown == 1 && strings.Contains(footer, "stops after its first")) {
				t.Errorf("partial=%v, but %d sections are shown; footer:\n%s", tt.partial, shown, footer)
			}
			if !tt.partial && !strings.HasSuffix(body, "</details>\n\n") {
				t.Errorf("the cut is not after a whole host section:\n%s", body[max(0, len(body)-300):])
			}
			// Every section not shown is named in the footer, up to its room.
			for _, m := range titles[shown:min(len(titles), shown+20)] {
				if !strings.Contains(footer, "\n- "+m[1]+"\n") {
					t.Errorf("the footer does not name the section left out %q", m[1])
				}
			}
		})
	}
}

// TestPRReviewWorkflow keeps the workflow and the README in step with what
// the tests above check.
func TestPRReviewWorkflow(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("pr-review", "dockplan-plan.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wf := string(b)
	for _, want := range []string{
		"plan -refresh=false -format=markdown",
		`sh "$FIT_COMMENT" -u "$RUN_URL" -m "$MARKER"`,
		"FIT_COMMENT: examples/pr-review/fit-comment.sh",
		"CONFIG_DIR: examples/pr-review",
		"gh pr comment",
		"--body-file",
		"pull-requests: write",
	} {
		if !strings.Contains(wf, want) {
			t.Errorf("dockplan-plan.yml lacks %q", want)
		}
	}
	if strings.Contains(wf, "\t") {
		t.Error("dockplan-plan.yml has a tab; YAML indents with spaces")
	}
}

// checkBalanced fails when a code fence or a <details> element is left
// open (outside code fences).
func checkBalanced(t *testing.T, md string) {
	t.Helper()
	fence, depth := "", 0
	for _, line := range strings.Split(md, "\n") {
		run := strings.TrimLeft(line, " ")
		run = run[:len(run)-len(strings.TrimLeft(run, "`~"))]
		switch {
		case fence != "":
			if len(run) >= len(fence) && run[0] == fence[0] && strings.TrimSpace(strings.TrimLeft(line, " "+run[:1])) == "" {
				fence = ""
			}
		case len(run) >= 3:
			fence = run
		case strings.HasPrefix(line, "<details>"):
			depth++
		case line == "</details>":
			depth--
		}
	}
	if fence != "" || depth != 0 {
		t.Errorf("unbalanced Markdown: open fence %q, <details> depth %d", fence, depth)
	}
}

// fitComment runs fit-comment.sh with md on its standard input.
func fitComment(t *testing.T, md string, args ...string) string {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join("pr-review", "fit-comment.sh")}, args...)...)
	cmd.Stdin = strings.NewReader(md)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("fit-comment.sh %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// bigPlan is the Markdown plan of 400 instances on 40 hosts, made with
// -refresh=false: about 230 KB, several times a comment's limit.
func bigPlan(t *testing.T, bin string) string {
	t.Helper()
	var src strings.Builder
	src.WriteString("project = \"big\"\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&src, "host \"h%02d\" {\n  address = \"ssh://deploy@10.9.0.%d\"\n  capacity {\n    cpu    = 8\n    memory = \"16GiB\"\n  }\n}\n", i, i)
	}
	src.WriteString(`container "app" {
  image = "example/app:1"
  count = 400
  ports = ["8080"]
  env   = { GREETING = "hello from a long plan", MODE = "review" }
  resources {
    cpu    = 0.1
    memory = "64MiB"
  }
}
`)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main"+hclspec.FileSuffix), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runBinary(t, bin, "-chdir="+dir, "plan", "-refresh=false", "-format=markdown")
	if code != 0 {
		t.Fatalf("plan of the big configuration exited %d: %s", code, stderr)
	}
	return out
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// dockplanBinary builds the dockplan binary once for the package's tests.
func dockplanBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dockplan-examples-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "dockplan")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/dockplan/dockplan").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// runBinary runs dockplan with a plain environment and returns its
// standard output, standard error and exit code.
func runBinary(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("dockplan %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

package hclspec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// FileSuffix is the suffix of configuration files.
const FileSuffix = ".dockplan.hcl"

// EnvVarPrefix prefixes environment variables that set input variables.
const EnvVarPrefix = "DOCKPLAN_VAR_"

// LoadOptions carries the variable sources and the environment.
type LoadOptions struct {
	// Vars are -var arguments, "name=value", in command-line order.
	Vars []string
	// VarFiles are -var-file paths, in command-line order; relative paths
	// are taken from the working directory, not the configuration dir.
	VarFiles []string
	// Environ is the process environment ("NAME=value"); it supplies
	// DOCKPLAN_VAR_* values and, for the implicit host, DOCKER_HOST.
	Environ []string
	// Values are exact variable values, as a saved plan restores them; they
	// win over every other source. Their Source is "saved plan".
	Values map[string]cty.Value
	// Context, when set, gives up the decode when it ends (an interrupt):
	// expressions that build huge values can take long.
	Context context.Context
	// EvalMemory is how much the heap may grow while the configuration is
	// evaluated; 0 means DefaultEvalMemory.
	EvalMemory int64
}

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "project"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "host", LabelNames: []string{"name"}},
		{Type: "container", LabelNames: []string{"name"}},
		{Type: "output", LabelNames: []string{"name"}},
		{Type: "state"},
	},
}

// Load reads every *.dockplan.hcl file in dir and decodes it. The returned
// diagnostics may hold warnings even when the Config is usable; the Config
// is nil when they hold an error. Files holds every parsed source (also on
// error) so diagnostics can be shown with snippets.
func Load(dir string, opts LoadOptions) (cfg *Config, files map[string]*hcl.File, diags hcl.Diagnostics) {
	srcs, diags := readSources(dir)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	if len(srcs) == 0 {
		return nil, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail: fmt.Sprintf("dockplan reads every *%s file in %s and found none. Create main%s there, or point -chdir at the folder that holds them.",
				FileSuffix, displayDir(dir), FileSuffix),
		}}
	}
	return LoadSources(dir, srcs, opts)
}

// readSources reads every *.dockplan.hcl file in dir, by path; none is not
// an error here.
func readSources(dir string) (map[string][]byte, hcl.Diagnostics) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the configuration directory",
			Detail:   fmt.Sprintf("%s. Run dockplan in the folder that holds the *%s files, or point -chdir at it.", err, FileSuffix),
		}}
	}
	srcs := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), FileSuffix) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		b, err := readRegular(name, maxSourceBytes)
		if err != nil {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Cannot read a configuration file",
				Detail:   fmt.Sprintf("%s: %s.", name, err),
			}}
		}
		srcs[name] = b
	}
	return srcs, nil
}

// maxSourceBytes bounds a configuration file or -var-file: far beyond any
// real configuration, far below what would exhaust memory.
const maxSourceBytes = 16 << 20

// readRegular reads a regular file of at most limit bytes; its errors say
// why without the path, which callers add. Devices, FIFOs and the like are
// refused before they are opened: reading /dev/zero would go on until
// memory ran out, and opening a FIFO blocks until a writer comes, which
// no signal interrupts. The read is bounded too, since files such as those
// under /proc report a size of zero.
func readRegular(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, unwrapPathErr(err)
	case st.IsDir():
		return nil, errors.New("is a directory")
	case !st.Mode().IsRegular():
		return nil, errors.New("not a regular file (devices, FIFOs and sockets are not read)")
	case st.Size() > limit:
		return nil, fmt.Errorf("%d bytes, more than the %dMiB allowed", st.Size(), limit>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than the %dMiB allowed", limit>>20)
	}
	return b, nil
}

func displayDir(dir string) string {
	if dir == "." || dir == "" {
		return "the current directory"
	}
	return dir
}

// LoadSources decodes configuration files given as name → content. Names
// appear as given in diagnostics. dir is where file() and TLS paths are
// resolved from. The results are as for Load.
func LoadSources(dir string, srcs map[string][]byte, opts LoadOptions) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	var files []*hcl.File
	for _, n := range names {
		f, d := parser.ParseHCL(srcs[n], n)
		diags = append(diags, d...)
		if f != nil {
			files = append(files, f)
		}
	}
	d := &decoder{
		cfg:    &Config{Dir: dir, Files: parser.Files(), Locals: map[string]cty.Value{}},
		dir:    dir,
		opts:   opts,
		budget: &budget{},
	}
	if diags.HasErrors() {
		return nil, d.cfg.Files, sortDiags(diags)
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	limit := opts.EvalMemory
	if limit <= 0 {
		limit = DefaultEvalMemory
	}
	if gd := guard(ctx, d.budget, limit, func() { d.decode(hcl.MergeFiles(files)) }); gd != nil {
		// The decode goroutine may still be running: nothing of d is used.
		return nil, parser.Files(), gd
	}
	diags = append(diags, d.diags...)
	if diags.HasErrors() {
		return nil, d.cfg.Files, sortDiags(diags)
	}
	return d.cfg, d.cfg.Files, sortDiags(diags)
}

// sortDiags orders diagnostics by file and position so output never depends
// on map order. Diagnostics without a subject keep their relative order and
// come first.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
	return diags
}

// decoder holds what one decode has learnt so far.
type decoder struct {
	cfg    *Config
	dir    string
	opts   LoadOptions
	diags  hcl.Diagnostics
	budget *budget

	// localNames and containerNames are the declared names, known before
	// their values so that references can be checked.
	localNames     map[string]bool
	containerNames []string
	// placementLabelAttrs are checked against host labels at the end.
	placementLabelAttrs []placementLabels
	// valuesBroken is set when a variable or local has no usable value.
	valuesBroken bool
}

// firstFileStart is where a diagnostic about the whole configuration
// points: the start of its first file.
func (d *decoder) firstFileStart() *hcl.Range {
	names := sortedKeys(d.cfg.Files)
	if len(names) == 0 {
		return nil
	}
	return &hcl.Range{Filename: names[0], Start: hcl.InitialPos, End: hcl.InitialPos}
}

// placementLabels is a placement.labels attribute and its value.
type placementLabels struct {
	attr   *hcl.Attribute
	labels map[string]string
}

func (d *decoder) errorf(rng *hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng,
	})
}

func (d *decoder) warnf(rng *hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng,
	})
}

var projectName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

func (d *decoder) decode(body hcl.Body) {
	content, diags := body.Content(rootSchema)
	d.diags = append(d.diags, diags...)
	if content == nil {
		return
	}
	d.cfg.funcs = functions(d.dir, d.budget)
	if attr, ok := content.Attributes["project"]; ok {
		d.decodeProject(attr)
	} else {
		d.errorf(d.firstFileStart(), "Missing project",
			"Set project = \"NAME\" in one of the files: lowercase letters, digits and dashes. It prefixes every container name and label, so two projects on one host never touch each other's containers.")
	}
	blocks := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		blocks[b.Type] = append(blocks[b.Type], b)
	}
	d.decodeState(blocks["state"])
	d.decodeVariables(blocks["variable"])
	d.decodeLocals(blocks["locals"])
	if d.valuesBroken {
		// Everything below reads variables and locals; decoding it with
		// broken ones would only repeat their errors.
		return
	}
	d.decodeHosts(blocks["host"])
	d.decodeContainers(blocks["container"])
	d.decodeOutputs(blocks["output"])
	d.checkCross()
}

func (d *decoder) decodeProject(attr *hcl.Attribute) {
	val, ok := d.evalStatic(attr.Expr, "project")
	if !ok {
		return
	}
	s, ok := d.toString(attr, val)
	if !ok {
		return
	}
	if !projectName.MatchString(s) {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid project name",
			"project %q must be 1-40 lowercase letters, digits and dashes, starting and ending with a letter or digit: it prefixes every container name and label.", s)
		return
	}
	d.cfg.Project = s
	d.cfg.ProjectRange = attr.Expr.Range()
}

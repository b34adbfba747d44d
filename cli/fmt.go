package cli

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
)

// fmtOptions are the options of `dockplan fmt`.
type fmtOptions struct {
	global    *globalOptions
	check     bool
	diff      bool
	recursive bool
	list      bool
	write     bool
}

func newFmtCommand(s Streams) *cobra.Command {
	opts := &fmtOptions{}
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite configuration files in canonical style",
		Long: `Fmt rewrites *` + hclspec.FileSuffix + ` files in the canonical HCL style (aligned equals
signs, two-space indents). With no PATH it formats the current directory;
a PATH may be a directory or a file, and "-" formats standard input to
standard output. Files it changed are listed.

Exit status: 0 when every file is formatted (or was rewritten), 1 on a
syntax error, 3 with -check when some file is not formatted.`,
		Example: `  dockplan fmt
  dockplan fmt -check -diff -recursive
  dockplan fmt - < main.dockplan.hcl`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFmt(opts, args, s)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.check, "check", false, "change nothing; exit 3 when some file is not formatted")
	f.BoolVar(&opts.diff, "diff", false, "show the changes as a unified diff")
	f.BoolVar(&opts.recursive, "recursive", false, "also format files in subdirectories")
	f.BoolVar(&opts.list, "list", true, "list the files whose formatting differs")
	f.BoolVar(&opts.write, "write", true, "write the result to the files (off with -check)")
	return cmd
}

func runFmt(opts *fmtOptions, args []string, s Streams) error {
	if len(args) == 0 {
		args = []string{"."}
	}
	if len(args) == 1 && args[0] == "-" {
		return fmtStdin(opts, s)
	}
	files, err := fmtTargets(args, opts.recursive)
	if err != nil {
		return &exitError{code: ExitError, msg: err.Error()}
	}
	changed, failed := 0, false
	for _, name := range files {
		c, err := fmtFile(opts, name, s)
		if err != nil {
			failed = true
			continue
		}
		if c {
			changed++
		}
	}
	switch {
	case failed:
		return exitWith(ExitError)
	case opts.check && changed > 0:
		return exitWith(ExitFormat)
	}
	return nil
}

// fmtTargets expands the arguments into the files to format, sorted.
// Directories contribute their *.dockplan.hcl files; named files are taken
// whatever their name (variable files, for example).
func fmtTargets(args []string, recursive bool) ([]string, error) {
	var files []string
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("cannot format %s: %v", arg, unwrapPathError(err))
		}
		if !st.IsDir() {
			files = append(files, arg)
			continue
		}
		err = filepath.WalkDir(arg, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if p != arg && (!recursive || strings.HasPrefix(e.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(e.Name(), hclspec.FileSuffix) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %v", arg, unwrapPathError(err))
		}
	}
	sort.Strings(files)
	return files, nil
}

// fmtFile formats one file and reports whether its formatting differed.
func fmtFile(opts *fmtOptions, name string, s Streams) (bool, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(s.Err, "Error: cannot read %s: %v\n", name, unwrapPathError(err))
		return false, err
	}
	out, err := formatSource(src, name, s, opts)
	if err != nil || bytes.Equal(src, out) {
		return false, err
	}
	if opts.list {
		fmt.Fprintln(s.Out, name)
	}
	if opts.diff {
		writeDiff(s.Out, name, src, out)
	}
	if opts.write && !opts.check {
		st, err := os.Stat(name)
		if err == nil {
			err = writeFileAtomic(name, out, st.Mode().Perm()) // keep the file's mode
		}
		if err != nil {
			fmt.Fprintf(s.Err, "Error: cannot write %s: %v\n", name, err)
			return true, err
		}
	}
	return true, nil
}

func fmtStdin(opts *fmtOptions, s Streams) error {
	src, err := io.ReadAll(s.In)
	if err != nil {
		return &exitError{code: ExitError, msg: "cannot read standard input: " + err.Error()}
	}
	out, err := formatSource(src, "<stdin>", s, opts)
	if err != nil {
		return exitWith(ExitError)
	}
	switch {
	case opts.diff:
		writeDiff(s.Out, "<stdin>", src, out)
	case !opts.check:
		_, err = s.Out.Write(out)
		return err
	}
	if opts.check && !bytes.Equal(src, out) {
		return exitWith(ExitFormat)
	}
	return nil
}

// formatSource checks the syntax (so that fmt never rewrites a broken file
// into a differently broken one) and formats it with hclwrite.
func formatSource(src []byte, name string, s Streams, opts *fmtOptions) ([]byte, error) {
	_, diags := hclwrite.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		files := map[string]*hcl.File{name: {Bytes: src}}
		_ = render.Diagnostics(s.Err, diags, files, render.TextOptions{})
		return nil, fmt.Errorf("%s has syntax errors", name)
	}
	return hclwrite.Format(src), nil
}

func writeDiff(w io.Writer, name string, a, b []byte) {
	text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: "old/" + filepath.ToSlash(name), ToFile: "new/" + filepath.ToSlash(name), Context: 3,
	})
	fmt.Fprint(w, text)
}

// writeFileAtomic replaces name with data through a temporary file in the
// same directory (mode perm, set before any byte is written; fsync;
// rename), so a crash leaves the old file or the new one, never half of
// one.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	for _, step := range []func() error{
		func() error { return tmp.Chmod(perm) },
		func() error { _, err := tmp.Write(data); return err },
		tmp.Sync,
	} {
		if err := step(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

package render

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcled"
)

// DiagnosticsFormatVersion is the format_version of JSON diagnostics.
const DiagnosticsFormatVersion = "1.0"

// TextOptions controls human-readable output.
type TextOptions struct {
	// Color adds ANSI colours; set it only when writing to a terminal.
	Color bool
}

// Diagnostics writes each diagnostic as Terraform does: severity and
// summary, the file, line and column with the enclosing block, the source
// line with the range underlined, then the detail.
func Diagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	for _, d := range diags {
		writeDiagnostic(bw, d, files, opts)
	}
	return bw.Flush()
}

func writeDiagnostic(w *bufio.Writer, d *hcl.Diagnostic, files map[string]*hcl.File, opts TextOptions) {
	label, color := "Error", "\x1b[1;31m"
	if d.Severity == hcl.DiagWarning {
		label, color = "Warning", "\x1b[1;33m"
	}
	if opts.Color {
		fmt.Fprintf(w, "\n%s%s:\x1b[0m \x1b[1m%s\x1b[0m\n", color, label, d.Summary)
	} else {
		fmt.Fprintf(w, "\n%s: %s\n", label, d.Summary)
	}
	if snip := snippetOf(d, files); snip != nil {
		fmt.Fprintf(w, "\n  on %s line %d, column %d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		if snip.Context != "" {
			fmt.Fprintf(w, ", in %s", snip.Context)
		}
		fmt.Fprintf(w, ":\n")
		prefix := fmt.Sprintf("%4d: ", snip.StartLine)
		code := strings.ReplaceAll(snip.Code, "\t", " ")
		fmt.Fprintf(w, "%s%s\n", prefix, code)
		start, end := snip.HighlightStartOffset, snip.HighlightEndOffset
		if end > start && start <= len(code) {
			fmt.Fprintf(w, "%s%s%s\n", strings.Repeat(" ", len(prefix)),
				strings.Repeat(" ", len([]rune(code[:start]))), strings.Repeat("^", max(1, len([]rune(code[start:min(end, len(code))])))))
		}
	} else if d.Subject != nil {
		fmt.Fprintf(w, "\n  on %s line %d, column %d:\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	if d.Detail != "" {
		fmt.Fprintf(w, "\n%s\n", d.Detail)
	}
}

// Snippet is the source line a diagnostic points at.
type Snippet struct {
	// Context names the enclosing block, such as container "web".
	Context string `json:"context,omitempty"`
	// Code is the first source line of the range.
	Code      string `json:"code"`
	StartLine int    `json:"start_line"`
	// HighlightStartOffset and HighlightEndOffset are byte offsets into
	// Code of the part the diagnostic is about.
	HighlightStartOffset int `json:"highlight_start_offset"`
	HighlightEndOffset   int `json:"highlight_end_offset"`
}

func snippetOf(d *hcl.Diagnostic, files map[string]*hcl.File) *Snippet {
	if d.Subject == nil {
		return nil
	}
	f := files[d.Subject.Filename]
	if f == nil || len(f.Bytes) == 0 {
		return nil
	}
	src := f.Bytes
	rng := *d.Subject
	lineStart := rng.Start.Byte
	if lineStart > len(src) {
		return nil
	}
	for lineStart > 0 && src[lineStart-1] != '\n' {
		lineStart--
	}
	lineEnd := bytes.IndexByte(src[lineStart:], '\n')
	if lineEnd < 0 {
		lineEnd = len(src)
	} else {
		lineEnd += lineStart
	}
	code := strings.TrimRight(string(src[lineStart:lineEnd]), "\r")
	start := rng.Start.Byte - lineStart
	end := min(rng.End.Byte, lineEnd) - lineStart
	if end < start {
		end = start
	}
	return &Snippet{
		Context:              hcled.ContextString(f, rng.Start.Byte),
		Code:                 code,
		StartLine:            rng.Start.Line,
		HighlightStartOffset: min(start, len(code)),
		HighlightEndOffset:   min(end, len(code)),
	}
}

// JSONDiagnostic is one diagnostic in JSON output.
type JSONDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *JSONRange `json:"range,omitempty"`
	Snippet  *Snippet   `json:"snippet,omitempty"`
}

// JSONRange is a source range; lines and columns count from 1, bytes from 0.
type JSONRange struct {
	Filename string  `json:"filename"`
	Start    JSONPos `json:"start"`
	End      JSONPos `json:"end"`
}

// JSONPos is a position in a source file.
type JSONPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// ValidateResult is the JSON document `dockplan validate -json` prints.
type ValidateResult struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []JSONDiagnostic `json:"diagnostics"`
}

// JSONDiagnostics converts diagnostics for JSON output.
func JSONDiagnostics(diags hcl.Diagnostics, files map[string]*hcl.File) []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, len(diags))
	for _, d := range diags {
		jd := JSONDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if d.Subject != nil {
			jd.Range = &JSONRange{
				Filename: d.Subject.Filename,
				Start:    JSONPos{Line: d.Subject.Start.Line, Column: d.Subject.Start.Column, Byte: d.Subject.Start.Byte},
				End:      JSONPos{Line: d.Subject.End.Line, Column: d.Subject.End.Column, Byte: d.Subject.End.Byte},
			}
			jd.Snippet = snippetOf(d, files)
		}
		out = append(out, jd)
	}
	return out
}

// Validate writes the result of validate as JSON.
func Validate(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File) error {
	res := ValidateResult{FormatVersion: DiagnosticsFormatVersion, Valid: !diags.HasErrors(), Diagnostics: JSONDiagnostics(diags, files)}
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			res.ErrorCount++
		} else {
			res.WarningCount++
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

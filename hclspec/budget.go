package hclspec

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Bounds on what expressions may build. HCL has no evaluation budget of
// its own: setproduct(range(1024), range(1024), range(1024)) asks for a
// billion tuples in one allocation, and indent(99999999999, s) for 100GB
// of spaces; either ends the process with Go's "fatal error: out of
// memory" and a stack trace. Function calls are checked before they run,
// and the whole decode is watched (see guard).
const (
	// MaxValueBytes bounds what one function call may take or give: the
	// bytes of its strings and 8 per element, counted every time a value
	// appears (a list of 1000 references to one string counts it 1000
	// times, as joining them would).
	MaxValueBytes = 64 << 20
	// MaxElements bounds the elements setproduct may make.
	MaxElements = 1_000_000
	// DefaultEvalMemory is how much the heap may grow while a
	// configuration is decoded before the decode is given up: ten times
	// what a configuration of a million instances needs.
	DefaultEvalMemory = 4 << 30
)

// budget is one configuration's evaluation budget.
type budget struct {
	// aborted is set once the decode was given up: function calls still
	// running in its goroutine then fail at once, which ends most runaway
	// expressions (a for expression calling range() per element).
	aborted atomic.Bool
}

// errTooLarge is the error of a call over the bounds.
func errTooLarge(what string, n, limit int64) error {
	return fmt.Errorf("%s would be %s, more than the %s an expression may build; build smaller values (a for expression over a large collection, or setproduct of large lists, multiplies sizes)",
		what, formatSize(n), formatSize(limit))
}

func formatSize(n int64) string {
	if n >= math.MaxInt64/2 {
		return "unbounded"
	}
	return FormatBytes(n)
}

// bounded wraps f so that a call whose arguments or result exceed
// MaxValueBytes fails instead of running, as does one that preChecks says
// would build too much (setproduct, indent, replace, format, formatlist).
func (b *budget) bounded(name string, f function.Function) function.Function {
	spec := &function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if b.aborted.Load() {
				return cty.NilVal, fmt.Errorf("the configuration's evaluation was given up")
			}
			total := int64(0)
			for _, a := range args {
				total += valueSize(a, MaxValueBytes-total+1)
				if total > MaxValueBytes {
					return cty.NilVal, errTooLarge("the arguments of "+name+"()", total, MaxValueBytes)
				}
			}
			if pre := preChecks[name]; pre != nil {
				if err := pre(args); err != nil {
					return cty.NilVal, err
				}
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if n := valueSize(v, MaxValueBytes+1); n > MaxValueBytes {
				return cty.NilVal, errTooLarge("the result of "+name+"()", n, MaxValueBytes)
			}
			return v, nil
		},
	}
	return function.New(spec)
}

// preChecks estimate, for the functions whose result can be far larger
// than their arguments, the result's size before they run.
var preChecks = map[string]func(args []cty.Value) error{
	"setproduct": func(args []cty.Value) error {
		n := int64(1)
		for _, a := range args {
			if !a.IsKnown() || a.IsNull() || !a.CanIterateElements() {
				return nil // setproduct reports it
			}
			n = satMul(n, int64(a.LengthInt()))
		}
		if n > MaxElements {
			return fmt.Errorf("setproduct() would make %d elements, more than the %d it may; multiply smaller lists", n, MaxElements)
		}
		return nil
	},
	"indent": func(args []cty.Value) error {
		spaces, ok := knownInt(args[0])
		s, sok := knownString(args[1])
		if !ok || !sok {
			return nil
		}
		if n := satAdd(int64(len(s)), satMul(spaces, int64(strings.Count(s, "\n")+1))); n > MaxValueBytes {
			return errTooLarge("the result of indent()", n, MaxValueBytes)
		}
		return nil
	},
	"format": func(args []cty.Value) error {
		return checkFormat("format", args[0], 1)
	},
	"formatlist": func(args []cty.Value) error {
		n := int64(1)
		for _, a := range args[1:] {
			if a.IsKnown() && !a.IsNull() && (a.Type().IsListType() || a.Type().IsTupleType()) {
				n = max(n, int64(a.LengthInt()))
			}
		}
		return checkFormat("formatlist", args[0], n)
	},
	"replace": func(args []cty.Value) error {
		s, ok1 := knownString(args[0])
		substr, ok2 := knownString(args[1])
		repl, ok3 := knownString(args[2])
		if !ok1 || !ok2 || !ok3 {
			return nil
		}
		// At most one match per byte (and one more) for an empty or a
		// regular expression substr, len(s)/len(substr) otherwise.
		matches := int64(len(s) + 1)
		if substr != "" && !(strings.HasPrefix(substr, "/") && strings.HasSuffix(substr, "/") && len(substr) > 1) {
			matches = int64(len(s) / len(substr))
		}
		if n := satAdd(int64(len(s)), satMul(matches, int64(len(repl)))); n > MaxValueBytes {
			return errTooLarge("the result of replace()", n, MaxValueBytes)
		}
		return nil
	},
}

// checkFormat refuses a format whose padding (widths and precisions, as
// in "%0999999d"), repeated times times, would exceed MaxValueBytes.
func checkFormat(name string, format cty.Value, times int64) error {
	f, ok := knownString(format)
	if !ok {
		return nil
	}
	pad := int64(len(f))
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		n := int64(0)
		for i++; i < len(f) && strings.IndexByte("0123456789.-+# ", f[i]) >= 0; i++ {
			if c := f[i]; c >= '0' && c <= '9' {
				n = satAdd(satMul(n, 10), int64(c-'0'))
			} else if n > 0 {
				pad, n = satAdd(pad, n), 0
			}
		}
		pad = satAdd(pad, n)
	}
	if total := satMul(pad, times); total > MaxValueBytes {
		return errTooLarge("the result of "+name+"()", total, MaxValueBytes)
	}
	return nil
}

// valueSize is v's size as MaxValueBytes counts it, or some number over
// limit once it is over: the walk stops there.
func valueSize(v cty.Value, limit int64) int64 {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() {
		return 8
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return 8 + int64(len(v.AsString()))
	case ty.IsPrimitiveType():
		return 8
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType() || ty.IsMapType() || ty.IsObjectType():
		n := int64(8)
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if ty.IsMapType() || ty.IsObjectType() {
				n += valueSize(k, limit-n)
			}
			n += valueSize(e, limit-n)
			if n > limit {
				return n
			}
		}
		return n
	}
	return 8
}

func knownInt(v cty.Value) (int64, bool) {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
		return 0, false
	}
	i, acc := v.AsBigFloat().Int64()
	if acc != big.Exact && (i == math.MaxInt64 || i == math.MinInt64) {
		return math.MaxInt64, true
	}
	return max(i, 0), true
}

func knownString(v cty.Value) (string, bool) {
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// satMul and satAdd saturate at math.MaxInt64 instead of overflowing.
func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// guardPoll is how often guard looks at the heap.
const guardPoll = 10 * time.Millisecond

// guard runs decode in its own goroutine and waits for it, unless ctx
// ends first or the heap grows by more than limit meanwhile: then it marks
// b aborted and returns a diagnostic at once. The decode goroutine cannot
// be stopped from outside; its function calls fail from then on, and the
// command exits with the error.
func guard(ctx context.Context, b *budget, limit int64, decode func()) hcl.Diagnostics {
	done := make(chan struct{})
	go func() {
		defer close(done)
		decode()
	}()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
	base := heap()
	tick := time.NewTicker(guardPoll)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			b.aborted.Store(true)
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Interrupted",
				Detail: "The configuration was still being evaluated when dockplan was interrupted; nothing was done."}}
		case <-tick.C:
			if grown := heap() - base; grown > limit {
				b.aborted.Store(true)
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Configuration too large to evaluate",
					Detail: fmt.Sprintf("Evaluating the configuration took more than %s of memory, so dockplan gave up. An expression builds a huge value: look for nested for expressions over large collections, or a template that repeats a large string.",
						FormatBytes(limit))}}
			}
		}
	}
}

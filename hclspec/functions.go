package hclspec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Sensitive is the go-cty mark carried by every value derived from a
// sensitive variable. Renderers print such values as (sensitive value).
const Sensitive = sensitiveMark("sensitive")

type sensitiveMark string

type funcTable map[string]function.Function

// FunctionNames lists the functions configurations may call, sorted.
func FunctionNames() []string {
	table := functions(".", &budget{})
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// functions returns the function library: go-cty's standard library under
// Terraform's names, plus file() relative to dir, base64 encoding,
// sensitive()/nonsensitive(), and try()/can(). Clock and random functions
// are left out on purpose: the same configuration must give the same plan.
func functions(dir string, b *budget) funcTable {
	table := funcTable{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"log": stdlib.LogFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"upper": stdlib.UpperFunc, "title": stdlib.TitleFunc, "regex": stdlib.RegexFunc,
		"regexall": stdlib.RegexAllFunc, "replace": stdlib.ReplaceFunc, "split": stdlib.SplitFunc,
		"strrev": stdlib.ReverseFunc, "substr": stdlib.SubstrFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimsuffix": stdlib.TrimSuffixFunc,
		"trimspace": stdlib.TrimSpaceFunc, "strlen": stdlib.StrlenFunc,
		"chunklist": stdlib.ChunklistFunc, "coalesce": coalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
		"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "index": stdlib.IndexFunc,
		"keys": stdlib.KeysFunc, "length": stdlib.LengthFunc, "lookup": stdlib.LookupFunc,
		"merge": stdlib.MergeFunc, "range": stdlib.RangeFunc, "reverse": stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setproduct": stdlib.SetProductFunc,
		"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "values": stdlib.ValuesFunc,
		"zipmap":    stdlib.ZipmapFunc,
		"csvdecode": stdlib.CSVDecodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "base64encode": base64EncodeFunc,
		"base64decode": base64DecodeFunc,
		"tostring":     stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"try":   tryfunc.TryFunc, "can": tryfunc.CanFunc,
		"file": makeFileFunc(dir), "sensitive": sensitiveFunc, "nonsensitive": nonsensitiveFunc,
	}
	for name, f := range table {
		switch name {
		case "try", "can", "sensitive", "nonsensitive":
			// try and can take expressions, not values (HCL looks at
			// their parameter types); sensitive and nonsensitive never
			// fail.
		default:
			table[name] = hideSensitiveErrors(b.bounded(name, f))
		}
	}
	return table
}

// hideSensitiveErrors wraps f so that its errors never quote a sensitive
// argument. go-cty's functions put the offending value in their messages
// (tonumber: `cannot convert "s3cr3t" to number`, file: `cannot read
// s3cr3t`), and those messages become diagnostics that validate and plan
// print. The parameters keep their names and types (HCL converts arguments
// to them and names them in messages), but take every value as it is
// (marked, unknown, null) and leave the checks to f, so results, marks and
// refinements are f's own.
func hideSensitiveErrors(f function.Function) function.Function {
	pass := func(p function.Parameter) function.Parameter {
		return function.Parameter{Name: p.Name, Description: p.Description, Type: p.Type,
			AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true}
	}
	var params []function.Parameter
	for _, p := range f.Params() {
		params = append(params, pass(p))
	}
	var varParam *function.Parameter
	if vp := f.VarParam(); vp != nil {
		p := pass(*vp)
		varParam = &p
	}
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      params,
		VarParam:    varParam,
		Type: func(args []cty.Value) (cty.Type, error) {
			ty, err := f.ReturnTypeForValues(args)
			return ty, redactError(err, args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := f.Call(args)
			return v, redactError(err, args)
		},
	})
}

// redactError replaces every sensitive argument's text in err's message
// with (sensitive value); when a sensitive value is too short to replace
// safely, or still shows after replacing, the message is replaced as a
// whole. An argument error keeps its index, so HCL still names the
// parameter.
func redactError(err error, args []cty.Value) error {
	if err == nil {
		return nil
	}
	var secrets []string
	for _, a := range args {
		secrets = sensitiveTexts(a, false, secrets)
	}
	if len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	hidden := false
	for _, s := range secrets {
		if len(s) < 4 {
			hidden = true
			break
		}
		msg = strings.ReplaceAll(msg, strconv.Quote(s), "(sensitive value)")
		msg = strings.ReplaceAll(msg, s, "(sensitive value)")
	}
	for _, s := range secrets {
		hidden = hidden || strings.Contains(msg, s) || strings.Contains(msg, strings.Trim(strconv.Quote(s), `"`))
	}
	if hidden {
		msg = "the call failed on a sensitive value, so the reason is not shown; check the value given for it"
	}
	var argErr function.ArgError
	if errors.As(err, &argErr) {
		return function.NewArgError(argErr.Index, errors.New(msg))
	}
	return errors.New(msg)
}

// sensitiveTexts appends the text of every known primitive inside v that
// carries the Sensitive mark (or sits inside a value that does), map keys
// included. Sensitive bools are left out: "true" and "false" are words
// messages use, and no function quotes a bool it refuses.
func sensitiveTexts(v cty.Value, marked bool, out []string) []string {
	marked = marked || v.HasMark(Sensitive)
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() {
		return out
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		if marked {
			out = append(out, v.AsString())
		}
	case ty == cty.Number:
		if marked {
			out = append(out, v.AsBigFloat().Text('f', -1), v.AsBigFloat().Text('g', -1))
		}
	case ty.IsCollectionType() || ty.IsObjectType() || ty.IsTupleType():
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if marked && k.Type() == cty.String {
				out = append(out, k.AsString())
			}
			out = sensitiveTexts(e, marked, out)
		}
	}
	return out
}

// maxFileBytes bounds what file() reads: a configuration is no place for a
// large blob, and a typo must not read a disk image into memory.
const maxFileBytes = 4 << 20

func makeFileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a UTF-8 file, relative to the configuration directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := readRegular(p, maxFileBytes)
			if err != nil {
				return cty.UnknownVal(cty.String), fmt.Errorf("cannot read %s: %w", p, err)
			}
			if !utf8.Valid(b) {
				return cty.UnknownVal(cty.String), fmt.Errorf("%s is not valid UTF-8 text", p)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// coalesceFunc returns its first argument that is neither null nor an empty
// string, as Terraform's coalesce does (go-cty's skips only nulls).
var coalesceFunc = function.New(&function.Spec{
	Description: "Returns the first argument that is neither null nor an empty string.",
	VarParam:    &function.Parameter{Name: "vals", Type: cty.DynamicPseudoType, AllowNull: true},
	Type: func(args []cty.Value) (cty.Type, error) {
		types := make([]cty.Type, len(args))
		for i, a := range args {
			types[i] = a.Type()
		}
		ty, _ := convert.UnifyUnsafe(types)
		if ty == cty.NilType {
			return cty.NilType, fmt.Errorf("all arguments must have the same type")
		}
		return ty, nil
	},
	Impl: func(args []cty.Value, ty cty.Type) (cty.Value, error) {
		for _, a := range args {
			conv, err := convert.Convert(a, ty)
			if err != nil {
				return cty.NilVal, err
			}
			if conv.IsNull() || (conv.Type() == cty.String && conv.AsString() == "") {
				continue
			}
			return conv, nil
		}
		return cty.NilVal, fmt.Errorf("no non-null, non-empty-string arguments")
	},
})

var base64EncodeFunc = function.New(&function.Spec{
	Description: "Encodes a string as standard base64.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var base64DecodeFunc = function.New(&function.Spec{
	Description: "Decodes standard base64 into a UTF-8 string.",
	Params:      []function.Parameter{{Name: "str", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := base64.StdEncoding.DecodeString(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), fmt.Errorf("not valid base64: %w", err)
		}
		if !utf8.Valid(b) {
			return cty.UnknownVal(cty.String), fmt.Errorf("the decoded bytes are not UTF-8 text")
		}
		return cty.StringVal(string(b)), nil
	},
})

var sensitiveFunc = function.New(&function.Spec{
	Description: "Marks a value as sensitive: it is redacted in every output.",
	Params: []function.Parameter{{
		Name: "value", Type: cty.DynamicPseudoType,
		AllowUnknown: true, AllowNull: true, AllowMarked: true, AllowDynamicType: true,
	}},
	Type: func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return args[0].Mark(Sensitive), nil
	},
})

var nonsensitiveFunc = function.New(&function.Spec{
	Description: "Removes the sensitive mark from a value the author knows is safe to show.",
	Params: []function.Parameter{{
		Name: "value", Type: cty.DynamicPseudoType,
		AllowUnknown: true, AllowNull: true, AllowMarked: true, AllowDynamicType: true,
	}},
	Type: func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, _ := args[0].UnmarkDeep()
		return v, nil
	},
})

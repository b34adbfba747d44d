package hclspec

import (
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// refScope says which references an expression may make.
type refScope struct {
	// locals and vars are always allowed once declared.
	// container allows container.NAME references.
	container bool
	// count allows count.index.
	count bool
	// self is the container whose block is being decoded ("" outside one).
	self string
	// varsOnly allows only var.* (validation conditions).
	varsOnly bool
	// what names the place, for messages: "a host block".
	what string
}

// checkRefs reports every reference the expression makes that the scope
// does not allow or that names nothing declared, and returns the container
// names it refers to, sorted.
func (d *decoder) checkRefs(expr hcl.Expression, scope refScope) ([]string, bool) {
	ok := true
	seen := map[string]bool{}
	for _, trav := range expr.Variables() {
		name, good := d.checkRef(trav, scope)
		ok = ok && good
		if name != "" {
			seen[name] = true
		}
	}
	return sortedKeys(seen), ok
}

func (d *decoder) checkRef(trav hcl.Traversal, scope refScope) (string, bool) {
	rng := trav.SourceRange().Ptr()
	root := trav.RootName()
	attr := ""
	if len(trav) > 1 {
		if a, ok := trav[1].(hcl.TraverseAttr); ok {
			attr = a.Name
		}
	}
	if scope.varsOnly && root != "var" {
		d.errorf(rng, "Invalid reference in variable validation",
			"A validation condition can refer only to input variables (var.NAME), not to %s.", root)
		return "", false
	}
	switch root {
	case "var":
		return "", d.checkDeclared(rng, attr, "input variable", "var", d.variableNames(),
			fmt.Sprintf("Declare it with a variable %q {} block.", attr))
	case "local":
		return "", d.checkDeclared(rng, attr, "local value", "local", sortedKeys(d.localNames),
			fmt.Sprintf("Define it in a locals block: locals { %s = ... }.", attr))
	case "count":
		if !scope.count {
			d.errorf(rng, `Reference to "count" in a non-counted context`,
				"count.index can only be used in a container block that sets count.")
			return "", false
		}
		if attr != "index" {
			d.errorf(rng, "Invalid count attribute", "The count object has one attribute, index.")
			return "", false
		}
		return "", true
	case "container":
		if !scope.container {
			d.errorf(rng, "Container values are not allowed here",
				"container.* values are known only after placement and apply, but %s must be known before planning. Use a variable or a local instead.", scope.what)
			return "", false
		}
		if !d.checkDeclared(rng, attr, "container", "container", d.containerNames, "") {
			return "", false
		}
		if attr == scope.self {
			d.errorf(rng, "Self-referential container",
				"Container %q refers to its own values; a container cannot depend on itself.", attr)
			return "", false
		}
		return attr, true
	}
	roots := []string{"var", "local", "container", "count"}
	detail := fmt.Sprintf("There is no variable named %q.", root)
	if s := suggest(root, roots); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	} else {
		detail += " References start with var., local., container. or count."
	}
	d.errorf(rng, "Unknown variable", "%s", detail)
	return "", false
}

func (d *decoder) checkDeclared(rng *hcl.Range, name, kind, root string, declared []string, hint string) bool {
	if name == "" {
		d.errorf(rng, "Invalid reference",
			"The %s object must be followed by a name, as in %s.NAME.", root, root)
		return false
	}
	for _, n := range declared {
		if n == name {
			return true
		}
	}
	detail := fmt.Sprintf("%s named %q has not been declared.", article(kind), name)
	if s := suggest(name, declared); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	} else if hint != "" {
		detail += " " + hint
	}
	d.errorf(rng, "Reference to undeclared "+kind, "%s", detail)
	return false
}

func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "An " + noun
	}
	return "A " + noun
}

// suggest returns the candidate nearest to name, if it is near enough to be
// a likely typo.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := levenshtein.Distance(name, c, nil); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func (d *decoder) variableNames() []string {
	names := make([]string, 0, len(d.cfg.Variables))
	for _, v := range d.cfg.Variables {
		names = append(names, v.Name)
	}
	return names
}

// baseCtx is the evaluation context of everything outside container blocks.
func (d *decoder) baseCtx() *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": d.cfg.varsVal, "local": d.cfg.localsVal},
		Functions: d.cfg.funcs,
	}
}

// eval checks an expression's references and evaluates it.
func (d *decoder) eval(expr hcl.Expression, ctx *hcl.EvalContext, scope refScope) (cty.Value, []string, bool) {
	refs, ok := d.checkRefs(expr, scope)
	if !ok {
		return cty.DynamicVal, refs, false
	}
	val, diags := expr.Value(ctx)
	d.diags = append(d.diags, diags...)
	return val, refs, !diags.HasErrors()
}

// evalStatic evaluates an expression that may use functions but no
// references at all.
func (d *decoder) evalStatic(expr hcl.Expression, what string) (cty.Value, bool) {
	for _, trav := range expr.Variables() {
		d.errorf(trav.SourceRange().Ptr(), "References are not allowed here",
			"%s must be written as a literal value.", what)
		return cty.DynamicVal, false
	}
	val, diags := expr.Value(&hcl.EvalContext{Functions: d.cfg.funcs})
	d.diags = append(d.diags, diags...)
	return val, !diags.HasErrors()
}

// valueFlags says what a converted attribute value may be.
type valueFlags int

const (
	// allowSensitive lets the value carry the Sensitive mark.
	allowSensitive valueFlags = 1 << iota
	// allowUnknown lets the value be (partly) unknown.
	allowUnknown
)

// convertAttr converts an attribute's value to ty, refusing null, and
// unknown or sensitive values unless flags allow them.
func (d *decoder) convertAttr(attr *hcl.Attribute, val cty.Value, ty cty.Type, flags valueFlags) (cty.Value, bool) {
	rng := attr.Expr.Range().Ptr()
	if val.IsNull() {
		d.errorf(rng, "Missing value", "%s must not be null.", attr.Name)
		return cty.NilVal, false
	}
	if flags&allowSensitive == 0 && val.HasMarkDeep(Sensitive) {
		d.errorf(rng, "Sensitive value not allowed",
			"%s is derived from a sensitive value, and would be shown in plans; only env, command, entrypoint, labels and health.command may hold sensitive values.", attr.Name)
		return cty.NilVal, false
	}
	if flags&allowUnknown == 0 && !val.IsWhollyKnown() {
		d.errorf(rng, "Value not known before planning",
			"%s depends on values known only after placement or apply; only env, command, entrypoint and labels may.", attr.Name)
		return cty.NilVal, false
	}
	out, err := convert.Convert(val, ty)
	if err != nil {
		d.errorf(rng, "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s.", attr.Name, convertMessage(err, ty))
		return cty.NilVal, false
	}
	if key, ok := nullElement(out); !ok {
		d.errorf(rng, "Missing value", "%s must not contain null values (%s is null).", attr.Name, key)
		return cty.NilVal, false
	}
	return out, true
}

// nullElement finds a null element of a known list or map, which no Docker
// setting can take; it returns the element's place and false.
func nullElement(v cty.Value) (string, bool) {
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() || !(v.Type().IsListType() || v.Type().IsMapType()) {
		return "", true
	}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsKnown() && e.IsNull() {
			if k.Type() == cty.String {
				return fmt.Sprintf("[%q]", k.AsString()), false
			}
			return "element " + k.AsBigFloat().Text('f', 0), false
		}
	}
	return "", true
}

func convertMessage(err error, ty cty.Type) string {
	msg := err.Error()
	if pe, ok := err.(cty.PathError); ok && len(pe.Path) > 0 {
		return fmt.Sprintf("%s (%s required)", msg, ty.FriendlyName())
	}
	if !strings.Contains(msg, "required") {
		msg += fmt.Sprintf(" (%s required)", ty.FriendlyName())
	}
	return msg
}

func (d *decoder) toString(attr *hcl.Attribute, val cty.Value) (string, bool) {
	v, ok := d.convertAttr(attr, val, cty.String, 0)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (d *decoder) toBool(attr *hcl.Attribute, val cty.Value) (bool, bool) {
	v, ok := d.convertAttr(attr, val, cty.Bool, 0)
	if !ok {
		return false, false
	}
	return v.True(), true
}

// toInt converts to a whole number within [min, max].
func (d *decoder) toInt(attr *hcl.Attribute, val cty.Value, min, max int64) (int64, bool) {
	v, ok := d.convertAttr(attr, val, cty.Number, 0)
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if acc != big.Exact || !bf.IsInt() {
		d.errorf(attr.Expr.Range().Ptr(), "Invalid number", "%s must be a whole number, not %s.", attr.Name, bf.Text('g', -1))
		return 0, false
	}
	if n < min || n > max {
		d.errorf(attr.Expr.Range().Ptr(), "Value out of range", "%s must be from %d to %d, not %d.", attr.Name, min, max, n)
		return 0, false
	}
	return n, true
}

func (d *decoder) toStringList(attr *hcl.Attribute, val cty.Value) ([]string, bool) {
	v, ok := d.convertAttr(attr, val, cty.List(cty.String), 0)
	if !ok {
		return nil, false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.errorf(attr.Expr.Range().Ptr(), "Missing value", "%s must not contain null.", attr.Name)
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

func (d *decoder) toStringMap(attr *hcl.Attribute, val cty.Value) (map[string]string, bool) {
	v, ok := d.convertAttr(attr, val, cty.Map(cty.String), 0)
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for k, e := range v.AsValueMap() {
		if e.IsNull() {
			d.errorf(attr.Expr.Range().Ptr(), "Missing value", "%s[%q] must not be null.", attr.Name, k)
			return nil, false
		}
		out[k] = e.AsString()
	}
	return out, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// attrsInOrder returns a body's attributes in source order.
func attrsInOrder(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Range.Filename != out[j].Range.Filename {
			return out[i].Range.Filename < out[j].Range.Filename
		}
		return out[i].Range.Start.Byte < out[j].Range.Start.Byte
	})
	return out
}

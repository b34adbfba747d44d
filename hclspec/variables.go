package hclspec

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true}, {Name: "error_message", Required: true},
	},
}

var identifier = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]*$`)

// validation is one validation block, checked once every variable has its
// value.
type validation struct {
	variable  *Variable
	condition hcl.Expression
	message   hcl.Expression
}

func (d *decoder) decodeVariables(blocks []*hcl.Block) {
	seen := map[string]*Variable{}
	var checks []validation
	for _, b := range blocks {
		v, vals := d.decodeVariable(b)
		if v == nil {
			continue
		}
		if prev := seen[v.Name]; prev != nil {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate variable",
				"A variable named %q was already declared at %s. Variable names must be unique.", v.Name, prev.DeclRange)
			continue
		}
		seen[v.Name] = v
		d.cfg.Variables = append(d.cfg.Variables, v)
		checks = append(checks, vals...)
	}
	sort.Slice(d.cfg.Variables, func(i, j int) bool { return d.cfg.Variables[i].Name < d.cfg.Variables[j].Name })
	before := countErrors(d.diags)
	d.assignVariables()
	vals := map[string]cty.Value{}
	for _, v := range d.cfg.Variables {
		if v.Value != cty.NilVal {
			vals[v.Name] = v.Value
		} else {
			vals[v.Name] = cty.DynamicVal
		}
	}
	d.cfg.varsVal = cty.ObjectVal(vals)
	if countErrors(d.diags) > before {
		d.valuesBroken = true
		return
	}
	for _, c := range checks {
		d.checkValidation(c)
	}
}

func (d *decoder) decodeVariable(b *hcl.Block) (*Variable, []validation) {
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, DeclRange: b.DefRange}
	if !identifier.MatchString(v.Name) {
		d.errorf(b.LabelRanges[0].Ptr(), "Invalid variable name",
			"%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", v.Name)
		return nil, nil
	}
	content, diags := b.Body.Content(variableSchema)
	d.diags = append(d.diags, diags...)
	if a, ok := content.Attributes["type"]; ok {
		ty, diags := typeexpr.TypeConstraint(a.Expr)
		d.diags = append(d.diags, diags...)
		if !diags.HasErrors() {
			v.Type = ty
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		if val, ok := d.evalStatic(a.Expr, "description"); ok {
			v.Description, _ = d.toString(a, val)
		}
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		if val, ok := d.evalStatic(a.Expr, "sensitive"); ok {
			v.Sensitive, _ = d.toBool(a, val)
		}
	}
	if a, ok := content.Attributes["default"]; ok {
		if val, ok := d.evalStatic(a.Expr, "A variable's default"); ok {
			conv, err := convert.Convert(val, v.Type)
			if err != nil {
				d.errorf(a.Expr.Range().Ptr(), "Invalid default value for variable",
					"This default cannot be used with the variable's type: %s.", err)
			} else {
				v.Default = conv
			}
		}
	}
	var checks []validation
	for _, vb := range content.Blocks {
		vc, diags := vb.Body.Content(validationSchema)
		d.diags = append(d.diags, diags...)
		cond, hasCond := vc.Attributes["condition"]
		msg, hasMsg := vc.Attributes["error_message"]
		if hasCond && hasMsg {
			checks = append(checks, validation{variable: v, condition: cond.Expr, message: msg.Expr})
		}
	}
	return v, checks
}

// rawValue is a variable value from the command line or the environment,
// parsed once the variable's type is known.
type rawValue struct {
	text   string
	source string
}

// assignVariables gives every variable its value: -var over -var-file over
// the environment over the default.
func (d *decoder) assignVariables() {
	declared := map[string]*Variable{}
	for _, v := range d.cfg.Variables {
		declared[v.Name] = v
	}
	values := map[string]cty.Value{}
	sources := map[string]string{}
	for _, kv := range d.opts.Environ {
		name, text, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvVarPrefix) {
			continue
		}
		name = strings.TrimPrefix(name, EnvVarPrefix)
		if v := declared[name]; v != nil {
			if val, ok := d.parseRaw(v, rawValue{text: text, source: "environment variable " + EnvVarPrefix + name}); ok {
				values[name], sources[name] = val, "environment"
			}
		}
	}
	for _, file := range d.opts.VarFiles {
		for name, val := range d.readVarFile(file, declared) {
			values[name], sources[name] = val, file
		}
	}
	for _, arg := range d.opts.Vars {
		name, text, ok := strings.Cut(arg, "=")
		if !ok || name == "" {
			d.errorf(nil, "Invalid -var option",
				"The option -var %q is not of the form NAME=VALUE; to set the variable \"region\", write -var region=eu-west.", arg)
			continue
		}
		v := declared[name]
		if v == nil {
			detail := fmt.Sprintf("A variable named %q was assigned with -var but is not declared.", name)
			if s := suggest(name, d.variableNames()); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			} else {
				detail += fmt.Sprintf(" Declare it with a variable %q {} block.", name)
			}
			d.errorf(nil, "Value for undeclared variable", "%s", detail)
			continue
		}
		if val, ok := d.parseRaw(v, rawValue{text: text, source: "-var " + name}); ok {
			values[name], sources[name] = val, "-var"
		}
	}
	for _, name := range sortedKeys(d.opts.Values) {
		if declared[name] == nil {
			d.errorf(nil, "Value for undeclared variable", "The saved plan sets %q, which the configuration no longer declares.", name)
			continue
		}
		val, _ := d.opts.Values[name].UnmarkDeep()
		values[name], sources[name] = val, "saved plan"
	}
	for _, v := range d.cfg.Variables {
		d.finishVariable(v, values, sources)
	}
}

func (d *decoder) finishVariable(v *Variable, values map[string]cty.Value, sources map[string]string) {
	val, ok := values[v.Name]
	switch {
	case ok:
		v.Source = sources[v.Name]
	case v.Default != cty.NilVal:
		val, v.Source = v.Default, "default"
	default:
		d.errorf(v.DeclRange.Ptr(), "No value for required variable",
			"The variable %q has no default. Set it with -var %s=VALUE, in a -var-file, or with the environment variable %s%s.",
			v.Name, v.Name, EnvVarPrefix, v.Name)
		return
	}
	conv, err := convert.Convert(val, v.Type)
	if err != nil {
		d.errorf(v.DeclRange.Ptr(), "Invalid value for variable",
			"The value of %q from %s does not fit its type %s: %s.", v.Name, v.Source, v.Type.FriendlyName(), err)
		return
	}
	if v.Sensitive {
		conv = conv.Mark(Sensitive)
	}
	v.Value = conv
}

// parseRaw turns a command-line or environment value into a cty value: the
// text itself for string variables, an HCL expression otherwise (as
// Terraform does, so -var 'ports=["80"]' works).
func (d *decoder) parseRaw(v *Variable, raw rawValue) (cty.Value, bool) {
	if v.Type == cty.String || v.Type == cty.DynamicPseudoType {
		return cty.StringVal(raw.text), true
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw.text), raw.source, hcl.InitialPos)
	if !diags.HasErrors() {
		var vd hcl.Diagnostics
		val, vd := expr.Value(&hcl.EvalContext{Functions: d.cfg.funcs})
		if !vd.HasErrors() {
			return val, true
		}
	}
	d.errorf(nil, "Invalid value for variable",
		"The value given by %s is not a valid %s. Write it in HCL syntax, for example %s.",
		raw.source, v.Type.FriendlyName(), typeExample(v.Type))
	return cty.NilVal, false
}

func typeExample(ty cty.Type) string {
	switch {
	case ty == cty.Number:
		return "3"
	case ty == cty.Bool:
		return "true"
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		return `'["a", "b"]'`
	default:
		return `'{ key = "value" }'`
	}
}

// readVarFile reads a -var-file: HCL attributes whose values are literals.
func (d *decoder) readVarFile(file string, declared map[string]*Variable) map[string]cty.Value {
	src, err := readRegular(file, maxSourceBytes)
	if err != nil {
		d.errorf(nil, "Cannot read a variables file", "-var-file %s: %s.", file, err)
		return nil
	}
	f, diags := hclparse.NewParser().ParseHCL(src, file)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return nil
	}
	d.cfg.Files[file] = f
	attrs, diags := f.Body.JustAttributes()
	d.diags = append(d.diags, diags...)
	out := map[string]cty.Value{}
	for _, a := range attrsInOrder(attrs) {
		if declared[a.Name] == nil {
			detail := fmt.Sprintf("The file sets %q, which no variable block declares; the value is ignored.", a.Name)
			if s := suggest(a.Name, d.variableNames()); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			}
			d.warnf(a.NameRange.Ptr(), "Value for undeclared variable", "%s", detail)
			continue
		}
		if val, ok := d.evalStatic(a.Expr, "A value in a variables file"); ok {
			out[a.Name] = val
		}
	}
	return out
}

func (d *decoder) checkValidation(c validation) {
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": d.cfg.varsVal},
		Functions: d.cfg.funcs,
	}
	scope := refScope{what: "a validation condition", varsOnly: true}
	val, _, ok := d.eval(c.condition, ctx, scope)
	if !ok {
		return
	}
	val, _ = val.UnmarkDeep()
	if !val.IsKnown() {
		return
	}
	if val.IsNull() || val.Type() != cty.Bool {
		d.errorf(c.condition.Range().Ptr(), "Invalid validation condition",
			"The condition must give true or false.")
		return
	}
	if val.True() {
		return
	}
	msg := "The value is not valid."
	if mv, _, ok := d.eval(c.message, ctx, scope); ok {
		switch s, err := convert.Convert(mv, cty.String); {
		case err != nil || s.IsNull() || !s.IsKnown():
		case s.HasMarkDeep(Sensitive):
			msg = "The error message refers to sensitive values, so it is not shown."
		default:
			msg = s.AsString()
		}
	}
	d.errorf(c.condition.Range().Ptr(), "Invalid value for variable",
		"%s\n\nvar.%s was set by %s; this was checked by the validation rule here.", msg, c.variable.Name, c.variable.Source)
}

package hclspec

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// decodeLocals evaluates every local value in dependency order. Locals may
// refer to variables, functions and other locals, but not to container
// values: those are known only after planning.
func (d *decoder) decodeLocals(blocks []*hcl.Block) {
	defs := map[string]*hcl.Attribute{}
	var order []*hcl.Attribute
	for _, b := range blocks {
		attrs, diags := b.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for _, a := range attrsInOrder(attrs) {
			if prev := defs[a.Name]; prev != nil {
				d.errorf(a.NameRange.Ptr(), "Duplicate local value",
					"A local value named %q was already defined at %s. Local value names must be unique.", a.Name, prev.NameRange)
				continue
			}
			defs[a.Name] = a
			order = append(order, a)
		}
	}
	d.localNames = map[string]bool{}
	for name := range defs {
		d.localNames[name] = true
	}
	before := countErrors(d.diags)
	defer func() { d.valuesBroken = d.valuesBroken || countErrors(d.diags) > before }()
	l := &localsEval{d: d, defs: defs, state: map[string]int{}}
	for _, a := range order {
		l.visit(a.Name, nil)
	}
	d.cfg.localsVal = cty.ObjectVal(d.cfg.Locals)
}

type localsEval struct {
	d     *decoder
	defs  map[string]*hcl.Attribute
	state map[string]int // 0 new, 1 visiting, 2 done
}

func (l *localsEval) visit(name string, path []string) {
	switch l.state[name] {
	case 2:
		return
	case 1:
		start := 0
		for i, p := range path {
			if p == name {
				start = i
			}
		}
		cycle := append(append([]string{}, path[start:]...), name)
		a := l.defs[name]
		l.d.errorf(a.NameRange.Ptr(), "Cycle in local values",
			"These local values refer to each other in a loop: %s. Break the loop.", "local."+strings.Join(cycle, " → local."))
		l.state[name] = 2
		l.d.cfg.Locals[name] = cty.DynamicVal
		return
	}
	l.state[name] = 1
	a := l.defs[name]
	for _, trav := range a.Expr.Variables() {
		if trav.RootName() != "local" || len(trav) < 2 {
			continue
		}
		if ta, ok := trav[1].(hcl.TraverseAttr); ok && l.defs[ta.Name] != nil {
			l.visit(ta.Name, append(path, name))
		}
	}
	if l.state[name] == 2 { // a cycle through this local was reported
		return
	}
	ctx := l.d.baseCtx()
	ctx.Variables["local"] = cty.ObjectVal(l.d.cfg.Locals)
	val, _, ok := l.d.eval(a.Expr, ctx, refScope{what: "a local value"})
	if !ok {
		val = cty.DynamicVal
	}
	l.d.cfg.Locals[name] = val
	l.state[name] = 2
}

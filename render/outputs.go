package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dockplan/dockplan/planner"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// OutputsText prints outputs as Terraform does after an apply, one
// "name = value" line each, values in HCL syntax; a sensitive output shows
// (sensitive value), and parts not known yet (known after apply).
func OutputsText(w io.Writer, outs []planner.OutputValue) error {
	width := 0
	for _, o := range outs {
		width = max(width, len(o.Name))
	}
	for _, o := range outs {
		if _, err := fmt.Fprintf(w, "%-*s = %s\n", width, o.Name, OutputValueText(o)); err != nil {
			return err
		}
	}
	return nil
}

// OutputValueText is one output's value in HCL syntax, or the word that
// stands for it.
func OutputValueText(o planner.OutputValue) string {
	if o.Sensitive {
		return sensitivePlaceholder
	}
	return hclValue(o.Value)
}

// hclValue writes v in HCL syntax on one line; unknown parts are (known
// after apply), marked ones (sensitive value).
func hclValue(v cty.Value) string {
	if v.IsMarked() {
		return sensitivePlaceholder
	}
	if !v.IsKnown() {
		return unknownPlaceholder
	}
	if v.IsNull() {
		return "null"
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return strconv.Quote(v.AsString())
	case ty == cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case ty == cty.Bool:
		return strconv.FormatBool(v.True())
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			parts = append(parts, hclValue(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case ty.IsMapType() || ty.IsObjectType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			parts = append(parts, hclKey(k.AsString())+" = "+hclValue(e))
		}
		if len(parts) == 0 {
			return "{}"
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return unknownPlaceholder
}

// hclKey writes a map key bare when it is an identifier, else quoted.
func hclKey(k string) string {
	for i, r := range k {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || !(r == '-' || (r >= '0' && r <= '9'))) {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// JSONOutput is one output in `dockplan output -json`, shaped as
// Terraform's: the value is null when it is sensitive (dockplan never
// prints a sensitive value) or not wholly known yet.
type JSONOutput struct {
	Sensitive bool            `json:"sensitive"`
	Known     bool            `json:"known"`
	Type      json.RawMessage `json:"type"`
	Value     json.RawMessage `json:"value"`
}

// OutputsJSON returns outputs by name for JSON encoding.
func OutputsJSON(outs []planner.OutputValue) (map[string]JSONOutput, error) {
	res := map[string]JSONOutput{}
	for _, o := range outs {
		j, err := OutputJSON(o)
		if err != nil {
			return nil, err
		}
		res[o.Name] = j
	}
	return res, nil
}

// OutputJSON is one output for JSON encoding.
func OutputJSON(o planner.OutputValue) (JSONOutput, error) {
	v, _ := o.Value.UnmarkDeep()
	ty, err := ctyjson.MarshalType(v.Type())
	if err != nil {
		return JSONOutput{}, fmt.Errorf("output %s: %w", o.Name, err)
	}
	j := JSONOutput{Sensitive: o.Sensitive, Known: v.IsWhollyKnown(), Type: ty, Value: json.RawMessage("null")}
	if j.Sensitive || !j.Known {
		return j, nil
	}
	val, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return JSONOutput{}, fmt.Errorf("output %s: %w", o.Name, err)
	}
	j.Value = val
	return j, nil
}

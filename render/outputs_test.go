package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/planner"
	"github.com/zclconf/go-cty/cty"
)

// TestOutputsRendering: values in HCL syntax, unknown parts and secrets
// replaced, the same in JSON; the secret appears nowhere.
func TestOutputsRendering(t *testing.T) {
	outs := []planner.OutputValue{
		{Name: "urls", Value: cty.TupleVal([]cty.Value{cty.StringVal("http://10.0.0.1:80/"), cty.UnknownVal(cty.String)})},
		{Name: "hosts", Value: cty.ObjectVal(map[string]cty.Value{"shop-api-0": cty.StringVal("node1"), "plain": cty.NumberIntVal(3)})},
		{Name: "token", Sensitive: true, Value: cty.StringVal("s3cr3t").Mark(hclspec.Sensitive)},
		{Name: "flag", Value: cty.True},
	}
	var buf bytes.Buffer
	if err := OutputsText(&buf, outs); err != nil {
		t.Fatal(err)
	}
	want := `urls  = ["http://10.0.0.1:80/", (known after apply)]
hosts = { plain = 3, shop-api-0 = "node1" }
token = (sensitive value)
flag  = true
`
	if buf.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", buf.String(), want)
	}
	all, err := OutputsJSON(outs)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(all)
	if strings.Contains(buf.String()+string(data), "s3cr3t") {
		t.Errorf("the secret shows: %s", data)
	}
	if all["urls"].Known || string(all["urls"].Value) != "null" || !all["token"].Sensitive || string(all["token"].Value) != "null" ||
		string(all["flag"].Value) != "true" || string(all["hosts"].Value) != `{"plain":3,"shop-api-0":"node1"}` {
		t.Errorf("JSON: %s", data)
	}
}

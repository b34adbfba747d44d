package render

import "testing"

// TestValueOfPreformattedAttributes: lists and bools the planner formats
// print as they are, like Terraform's; other strings are quoted.
func TestValueOfPreformattedAttributes(t *testing.T) {
	for _, tt := range []struct{ path, v, want string }{
		{"cap_add", `["NET_BIND_SERVICE"]`, `["NET_BIND_SERVICE"]`},
		{"tmpfs", `["/run:size=8m", "/tmp"]`, `["/run:size=8m", "/tmp"]`},
		{"read_only", "true", "true"},
		{"init", "true", "true"},
		{"ulimits", `{nofile = "1024:4096"}`, `{nofile = "1024:4096"}`},
		{"user", "true", `"true"`},
		{"cap_drop", "\x1b[31m", `"\x1b[31m"`},
	} {
		if got := value(tt.path, tt.v); got != tt.want {
			t.Errorf("value(%q, %q) = %s, want %s", tt.path, tt.v, got, tt.want)
		}
	}
}

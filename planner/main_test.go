package planner_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs the property tests with 300 draws each (rapid's default is
// 100) unless -rapid.checks says otherwise.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", "300"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

package cli

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dockplan": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the CLI scripts in testdata/script: each runs the real
// dockplan binary entry point and checks its output and exit code.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// Scripts must not pick up the developer's engine settings.
			env.Setenv("DOCKER_HOST", "")
			env.Setenv("DOCKER_CONTEXT", "")
			return nil
		},
	})
}

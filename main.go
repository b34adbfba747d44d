// Command dockplan plans and applies Docker containers across several
// Docker hosts. Everything lives in package cli.
package main

import (
	"os"

	"github.com/dockplan/dockplan/cli"
)

func main() {
	os.Exit(cli.Main())
}

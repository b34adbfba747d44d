//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package state

import (
	"errors"
	"os"
	"runtime"
)

var errNoFlock = errors.New("the file backend needs flock, which dockplan does not use on " + runtime.GOOS + "; run dockplan on Linux or macOS")

func tryFlock(*os.File) (bool, error) { return false, errNoFlock }

func unflock(*os.File) error { return errNoFlock }

func ignorableSyncError(error) bool { return true }

package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/render"
	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate"
	"github.com/spf13/pflag"
)

// stateFlag is a command's -state flag: the state file, and whether the
// user gave it (the configuration's state block decides otherwise).
type stateFlag struct {
	path  string
	given bool
}

// stateFlagOf reads -state from a command's flags, with path its value.
func stateFlagOf(f *pflag.FlagSet, path string) stateFlag {
	return stateFlag{path: path, given: f.Changed("state")}
}

// backend is the state backend a command works on, opened by openBackend.
// Close it when done: the etcd backend revokes its lock lease then, so a
// lock it still holds frees at once instead of after the lease TTL.
type backend struct {
	state.Backend
	// where names the state in messages: the file path, or
	// "etcd:<prefix>".
	where string
	// path is the state file; empty for etcd.
	path string
	// etcd is the etcd backend; nil for a file.
	etcd *etcdstate.Backend
	// block is the state block that chose it; nil for the default file.
	block *hclspec.StateConfig
}

// Close releases what the backend holds (for etcd: its lock lease and its
// connection). It is safe to call more than once.
func (b *backend) Close() error {
	if b == nil || b.etcd == nil {
		return nil
	}
	return b.etcd.Close()
}

// isEtcd reports whether the state is in etcd.
func (b *backend) isEtcd() bool { return b.etcd != nil }

// lastGood says where the last state saved before a failure is, for the
// message of a failed save.
func (b *backend) lastGood() string {
	if b.isEtcd() {
		return fmt.Sprintf("The last good state is the one stored in %s", b.where)
	}
	return fmt.Sprintf("The last good state is %s (and %s.backup)", b.path, b.path)
}

// otherProject is the message for a state that belongs to another project
// than the configuration.
func (b *backend) otherProject(stateProject, cfgProject string) error {
	what, fix := "state file", "point -state at this project's state, or fix project"
	if b.isEtcd() {
		what, fix = "the state", fmt.Sprintf("give this project its own prefix in the state block at %s, or fix project", b.block.Where())
	}
	return &exitError{code: ExitError, msg: fmt.Sprintf("%s %s belongs to project %q, but the configuration is project %q; %s",
		what, b.where, stateProject, cfgProject, fix)}
}

// openBackend returns the state backend that the configuration's state
// block sc (nil when there is none) and the -state flag choose:
//
//   - no state block: the file -state names (dockplan.state.json by
//     default);
//   - backend = "file": the block's path, unless -state is given, which
//     wins (as it always did);
//   - backend = "etcd": the etcd backend; -state is refused then, since it
//     would name a file nobody reads (state migrate moves a state between
//     the two).
//
// The etcd credentials come from DOCKPLAN_ETCD_USERNAME and
// DOCKPLAN_ETCD_PASSWORD. Its TLS files are checked here, so that a
// missing file is named with the block that names it.
func openBackend(sc *hclspec.StateConfig, flag stateFlag) (*backend, error) {
	if sc == nil || sc.Backend == hclspec.StateFile {
		path := flag.path
		if sc != nil && !flag.given {
			path = sc.Path
		}
		if path == "" {
			path = state.DefaultPath
		}
		return &backend{Backend: state.NewFile(path), where: path, path: path, block: sc}, nil
	}
	if flag.given {
		return nil, &exitError{code: ExitError, msg: fmt.Sprintf("-state=%s names a state file, but the state block at %s keeps the state in etcd (prefix %s), so dockplan would not read that file. Remove -state; to move a state between a file and etcd, use dockplan state migrate",
			flag.path, sc.Where(), sc.Prefix)}
	}
	eb, err := openEtcd(sc, sc.Where())
	if err != nil {
		return nil, err
	}
	return &backend{Backend: eb, where: eb.Where(), etcd: eb, block: sc}, nil
}

// openEtcd opens the etcd backend sc describes; origin says where the
// settings come from ("main.dockplan.hcl:3", "the flags") in errors.
func openEtcd(sc *hclspec.StateConfig, origin string) (*etcdstate.Backend, error) {
	opts := etcdstate.Options{
		Endpoints: sc.Endpoints, Prefix: sc.Prefix, LockTTL: sc.LockTTL, Timeout: sc.DialTimeout,
	}
	if t := sc.TLS; t != nil {
		for _, f := range []struct{ name, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
			if err := checkTLSFile(f.path); err != nil {
				return nil, &exitError{code: ExitError, msg: fmt.Sprintf("the etcd TLS %s of the state settings at %s: %s: %v; fix the path (a relative one is taken from the configuration directory)",
					f.name, origin, f.path, err)}
			}
		}
		opts.CAFile, opts.CertFile, opts.KeyFile = t.CAFile, t.CertFile, t.KeyFile
	}
	eb, err := etcdstate.New(opts)
	if err != nil {
		return nil, &exitError{code: ExitError, msg: fmt.Sprintf("cannot open the etcd state of the state settings at %s: %v", origin, err)}
	}
	return eb, nil
}

// checkTLSFile checks that path, when set, is a readable regular file.
func checkTLSFile(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return unwrapPathError(err)
	case !st.Mode().IsRegular():
		return errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return unwrapPathError(err)
	}
	return f.Close()
}

// loadStateBlock reads only the state block of the configuration in the
// working directory (for the state commands, which take no -var), printing
// its diagnostics on stderr; nil when there is no configuration or no
// block.
func loadStateBlock(s Streams) (*hclspec.StateConfig, error) {
	sc, files, diags := hclspec.LoadState(".")
	if err := render.Diagnostics(s.Err, diags, files, render.TextOptions{}); err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, exitWith(ExitError)
	}
	return sc, nil
}

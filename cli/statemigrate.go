package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/state"
	"github.com/spf13/cobra"
)

// migrateOptions are the options of `dockplan state migrate`.
type migrateOptions struct {
	stateOptions
	to          string
	endpoints   []string
	prefix      string
	caFile      string
	certFile    string
	keyFile     string
	dialTimeout time.Duration
}

// etcdFlags are migrate's flags that give etcd settings.
var etcdFlags = []string{"endpoints", "prefix", "ca-file", "cert-file", "key-file", "dial-timeout"}

func newStateMigrateCommand(s Streams) *cobra.Command {
	opts := &migrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate -to=etcd|file",
		Short: "Move the state between a file and etcd",
		Long: `Migrate copies the state from a file to etcd (-to=etcd) or from etcd to a
file (-to=file), with its lineage and serial, holding the lock of both.

The etcd side is the configuration's state block when it says
backend = "etcd", else the flags -endpoints and -prefix (and -ca-file,
-cert-file, -key-file, -dial-timeout). The file side is -state when given,
else the state block's path when it says backend = "file", else
dockplan.state.json. So both orders work: migrate first and then change the
configuration, or change the configuration first and then migrate.

Migrate refuses when the destination holds another state (another lineage)
or a newer version of this one (a higher serial); an older version of this
one is replaced. The source is left as it was: delete it yourself once the
configuration names the new place and plan shows nothing unexpected. Etcd
credentials come from DOCKPLAN_ETCD_USERNAME and DOCKPLAN_ETCD_PASSWORD.`,
		Example: `  dockplan state migrate -to=etcd -endpoints=https://10.0.0.5:2379,https://10.0.0.6:2379 -prefix=dockplan/shop -ca-file=ca.pem
  dockplan state migrate -to=etcd     # the state block already says backend = "etcd"
  dockplan state migrate -to=file -state=shop.state.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStateMigrate(cmd, opts, s) },
	}
	opts.register(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.to, "to", "", "where the state goes: `etcd` or file (required)")
	f.StringSliceVar(&opts.endpoints, "endpoints", nil, "the etcd members' client `URLs`, comma-separated (when the configuration has no etcd state block)")
	f.StringVar(&opts.prefix, "prefix", "", "the etcd key `PREFIX` of this state, such as dockplan/shop")
	f.StringVar(&opts.caFile, "ca-file", "", "the `PEM` file of the authority that signed the etcd members' certificates")
	f.StringVar(&opts.certFile, "cert-file", "", "the etcd client certificate `PEM` file")
	f.StringVar(&opts.keyFile, "key-file", "", "the etcd client certificate's key `PEM` file")
	f.DurationVar(&opts.dialTimeout, "dial-timeout", 0, "how long each etcd operation waits for the cluster, a `DURATION` (default 5s)")
	f.DurationVar(&opts.lockTimeout, "lock-timeout", 0, "wait up to `DURATION` for each state lock")
	return cmd
}

// migration is one state migrate: the two sides and which one the
// configuration names.
type migration struct {
	src, dst *backend
	// configured is where the configuration (with -state) points dockplan.
	configured string
	// block is the state block, nil when there is none.
	block *hclspec.StateConfig
}

func runStateMigrate(cmd *cobra.Command, opts *migrateOptions, s Streams) error {
	ctx := cmd.Context()
	m, err := openMigration(cmd, opts, s)
	if err != nil {
		return err
	}
	defer m.close(s)
	unlock, err := m.lockBoth(ctx, opts.lockTimeout, s.Err)
	if err != nil {
		return err
	}
	defer unlock(s)
	st, err := m.src.Load(ctx)
	switch {
	case err != nil:
		return &exitError{code: ExitError, msg: fmt.Sprintf("cannot read the state to migrate: %v", err)}
	case st == nil:
		return &exitError{code: ExitError, msg: fmt.Sprintf("there is no state in %s to migrate; nothing was changed. Check -state, or the etcd settings", m.src.where)}
	}
	copied, err := m.copy(ctx, st)
	if err != nil {
		return err
	}
	m.report(s, st, copied)
	return nil
}

// openMigration works out the two sides and opens them.
func openMigration(cmd *cobra.Command, opts *migrateOptions, s Streams) (*migration, error) {
	if opts.to != "etcd" && opts.to != "file" {
		return nil, &exitError{code: ExitError, msg: fmt.Sprintf("-to=%q: say where the state goes, -to=etcd or -to=file", opts.to)}
	}
	block, err := loadStateBlock(s)
	if err != nil {
		return nil, err
	}
	etcdCfg, etcdOrigin, err := opts.etcdSide(cmd, block)
	if err != nil {
		return nil, err
	}
	filePath := opts.statePath
	if !cmd.Flags().Changed("state") && block != nil && block.Backend == hclspec.StateFile {
		filePath = block.Path
	}
	eb, err := openEtcd(etcdCfg, etcdOrigin)
	if err != nil {
		return nil, err
	}
	etcdSide := &backend{Backend: eb, where: eb.Where(), etcd: eb, block: etcdCfg}
	fileSide := &backend{Backend: state.NewFile(filePath), where: filePath, path: filePath}
	m := &migration{block: block, configured: filePath}
	if block != nil && block.Backend == hclspec.StateEtcd {
		m.configured = etcdSide.where
	}
	if opts.to == "etcd" {
		m.src, m.dst = fileSide, etcdSide
	} else {
		m.src, m.dst = etcdSide, fileSide
	}
	return m, nil
}

// etcdSide returns the etcd settings: the state block's when it says etcd
// (then no etcd flag may be given), else the flags'.
func (o *migrateOptions) etcdSide(cmd *cobra.Command, block *hclspec.StateConfig) (*hclspec.StateConfig, string, error) {
	var given []string
	for _, name := range etcdFlags {
		if cmd.Flags().Changed(name) {
			given = append(given, "-"+name)
		}
	}
	if block != nil && block.Backend == hclspec.StateEtcd {
		if len(given) > 0 {
			return nil, "", &exitError{code: ExitError, msg: fmt.Sprintf("the state block at %s already gives the etcd settings; remove %s (or the state block)", block.Where(), strings.Join(given, ", "))}
		}
		return block, block.Where(), nil
	}
	fail := func(format string, args ...any) (*hclspec.StateConfig, string, error) {
		return nil, "", &exitError{code: ExitError, msg: fmt.Sprintf(format, args...)}
	}
	if len(o.endpoints) == 0 || o.prefix == "" {
		return fail("the configuration has no etcd state block, so give the etcd side with -endpoints and -prefix, such as -endpoints=https://10.0.0.5:2379,https://10.0.0.6:2379 -prefix=dockplan/shop (or add the state block first)")
	}
	endpoints, err := hclspec.CheckEtcdEndpoints(o.endpoints)
	if err != nil {
		return fail("-endpoints: %v", err)
	}
	prefix, err := hclspec.CheckEtcdPrefix(o.prefix)
	if err != nil {
		return fail("-prefix: %v", err)
	}
	if o.dialTimeout < 0 {
		return fail("-dial-timeout=%s must not be negative", o.dialTimeout)
	}
	sc := &hclspec.StateConfig{Backend: hclspec.StateEtcd, Endpoints: endpoints, Prefix: prefix, DialTimeout: o.dialTimeout}
	if o.caFile != "" || o.certFile != "" || o.keyFile != "" {
		if (o.certFile == "") != (o.keyFile == "") {
			return fail("a client certificate needs both -cert-file and -key-file")
		}
		if strings.HasPrefix(endpoints[0], "http://") {
			return fail("-ca-file, -cert-file and -key-file apply to https:// endpoints only")
		}
		sc.TLS = &hclspec.StateTLS{CAFile: o.caFile, CertFile: o.certFile, KeyFile: o.keyFile}
	}
	return sc, "the -endpoints and -prefix flags", nil
}

// lockBoth takes the source's lock, then the destination's, each waiting
// up to timeout (saying so on w), and returns their release.
func (m *migration) lockBoth(ctx context.Context, timeout time.Duration, w io.Writer) (func(Streams), error) {
	lock := func(b *backend) (string, error) {
		id, err := b.lock(ctx, "state migrate", timeout, w)
		if err != nil {
			return "", &exitError{code: ExitError, msg: fmt.Sprintf("%v\nNothing was migrated.", err)}
		}
		return id, nil
	}
	release := func(s Streams, b *backend, id string) {
		if err := b.Unlock(context.WithoutCancel(ctx), id); err != nil {
			fmt.Fprintf(s.Err, "Warning: could not release the lock of %s: %v\n", b.where, err)
		}
	}
	srcID, err := lock(m.src)
	if err != nil {
		return nil, err
	}
	dstID, err := lock(m.dst)
	if err != nil {
		_ = m.src.Unlock(context.WithoutCancel(ctx), srcID)
		return nil, err
	}
	return func(s Streams) {
		release(s, m.dst, dstID)
		release(s, m.src, srcID)
	}, nil
}

// copy writes st to the destination unless it holds another lineage or a
// newer serial. It reports whether anything was written (false: the
// destination already holds exactly this state).
func (m *migration) copy(ctx context.Context, st *state.State) (bool, error) {
	there, err := m.dst.Load(ctx)
	if err != nil {
		return false, &exitError{code: ExitError, msg: fmt.Sprintf("cannot read the destination %s: %v\nNothing was migrated.", m.dst.where, err)}
	}
	if there != nil {
		switch {
		case there.Lineage != st.Lineage:
			return false, &exitError{code: ExitError, msg: fmt.Sprintf("%s already holds another state (lineage %s, project %q, serial %d) than %s (lineage %s, project %q, serial %d); nothing was migrated. Give this state another place (another -prefix or -state), or, if the state there is not needed, remove it (%s) and run migrate again",
				m.dst.where, there.Lineage, there.Project, there.Serial, m.src.where, st.Lineage, st.Project, st.Serial, removeHint(m.dst))}
		case there.Serial > st.Serial:
			return false, &exitError{code: ExitError, msg: fmt.Sprintf("%s already holds a newer version of this state (serial %d; %s has serial %d): it was migrated there before and changed since. Nothing was migrated. Point dockplan at %s and keep using it; only if you want the older version back, remove the newer one (%s) and run migrate again",
				m.dst.where, there.Serial, m.src.where, st.Serial, m.dst.where, removeHint(m.dst))}
		case there.Serial == st.Serial:
			return false, nil
		}
		if err := m.removeOlder(ctx, there); err != nil {
			return false, err
		}
	}
	if err := m.dst.Save(ctx, st); err != nil {
		return false, &exitError{code: ExitError, msg: fmt.Sprintf("cannot write the state to %s: %v\nThe source %s is unchanged.", m.dst.where, err, m.src.where)}
	}
	back, err := m.dst.Load(ctx)
	if err != nil || back == nil || back.Lineage != st.Lineage || back.Serial != st.Serial || len(back.Instances) != len(st.Instances) {
		return false, &exitError{code: ExitError, msg: fmt.Sprintf("the state written to %s does not read back as written (%v); the source %s is unchanged, keep using it", m.dst.where, err, m.src.where)}
	}
	return true, nil
}

// removeOlder removes an older version of the state from the destination,
// so that the save keeps the source's serial: a file is moved to its
// .backup, an etcd state deleted.
func (m *migration) removeOlder(ctx context.Context, older *state.State) error {
	var err error
	if m.dst.isEtcd() {
		err = m.dst.etcd.Remove(ctx, state.Header{FormatVersion: older.FormatVersion, Lineage: older.Lineage, Serial: older.Serial})
	} else if err = os.Rename(m.dst.path, m.dst.path+".backup"); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return &exitError{code: ExitError, msg: fmt.Sprintf("cannot replace the older version (serial %d) of this state in %s: %v\nNothing was migrated.", older.Serial, m.dst.where, err)}
	}
	return nil
}

// removeHint says how to remove the state at b.
func removeHint(b *backend) string {
	if b.isEtcd() {
		return fmt.Sprintf("etcdctl del --prefix %s/", b.etcd.Prefix())
	}
	return fmt.Sprintf("rm %s %s.backup", b.path, b.path)
}

// report says what was done, what the configuration must say, and that
// the source may go.
func (m *migration) report(s Streams, st *state.State, copied bool) {
	if copied {
		instances := fmt.Sprintf("%d instances", len(st.Instances))
		if len(st.Instances) == 1 {
			instances = "1 instance"
		}
		fmt.Fprintf(s.Out, "Migrated the state of project %q (lineage %s, serial %d, %s) from %s to %s.\n",
			st.Project, st.Lineage, st.Serial, instances, m.src.where, m.dst.where)
	} else {
		fmt.Fprintf(s.Out, "%s already holds this state (lineage %s, serial %d); nothing was written.\n", m.dst.where, st.Lineage, st.Serial)
	}
	if m.configured == m.dst.where {
		fmt.Fprintf(s.Out, "The configuration names %s, so dockplan uses it from now on.\n", m.dst.where)
	} else {
		fmt.Fprintf(s.Out, "\nThe configuration still names %s: until you change it, dockplan goes on using that one. %s\n", m.configured, m.configHint())
	}
	fmt.Fprintf(s.Out, "\nThe source %s was left as it was. Once the configuration names %s and dockplan plan shows no unexpected change, delete the source (%s): it holds the same secrets.\n",
		m.src.where, m.dst.where, removeHint(m.src))
}

// configHint says how to make the configuration name the destination.
func (m *migration) configHint() string {
	if m.dst.isEtcd() {
		sc := m.dst.block
		var b strings.Builder
		b.WriteString("Add this block to a *.dockplan.hcl file")
		if m.block != nil {
			fmt.Fprintf(&b, " in place of the state block at %s", m.block.Where())
		}
		b.WriteString(":\n\nstate {\n  backend   = \"etcd\"\n  endpoints = [")
		for i, ep := range sc.Endpoints {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", ep)
		}
		fmt.Fprintf(&b, "]\n  prefix    = %q\n", sc.Prefix)
		if t := sc.TLS; t != nil {
			b.WriteString("  tls {\n")
			for _, f := range [][2]string{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
				if f[1] != "" {
					fmt.Fprintf(&b, "    %-9s = %q\n", f[0], f[1])
				}
			}
			b.WriteString("  }\n")
		}
		b.WriteString("}")
		return b.String()
	}
	if m.dst.path == state.DefaultPath && m.block != nil {
		return fmt.Sprintf("Remove the state block at %s (the default is %s).", m.block.Where(), state.DefaultPath)
	}
	how := fmt.Sprintf("Add this block to a *.dockplan.hcl file (or pass -state=%s to every command)", m.dst.path)
	if m.block != nil {
		how = fmt.Sprintf("Replace the state block at %s with this one", m.block.Where())
	}
	return fmt.Sprintf("%s:\n\nstate {\n  backend = \"file\"\n  path    = %q\n}", how, m.dst.path)
}

// close closes both sides.
func (m *migration) close(s Streams) {
	for _, b := range []*backend{m.src, m.dst} {
		if err := b.Close(); err != nil {
			fmt.Fprintf(s.Err, "Warning: %v\n", err)
		}
	}
}

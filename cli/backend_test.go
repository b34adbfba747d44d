package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	"github.com/dockplan/dockplan/state/statetest"
	"github.com/hashicorp/hcl/v2"
)

func TestOpenBackend(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileBlock := &hclspec.StateConfig{Backend: hclspec.StateFile, Path: "conf/shop.json", DeclRange: declAt("main.dockplan.hcl", 3)}
	etcdBlock := func(tls *hclspec.StateTLS) *hclspec.StateConfig {
		return &hclspec.StateConfig{Backend: hclspec.StateEtcd, Endpoints: []string{"https://127.0.0.1:1"}, Prefix: "dockplan/shop",
			TLS: tls, DeclRange: declAt("state.dockplan.hcl", 7)}
	}
	tests := []struct {
		name      string
		block     *hclspec.StateConfig
		flag      stateFlag
		wantWhere string
		wantErr   []string
	}{
		{name: "default file", flag: stateFlag{path: state.DefaultPath}, wantWhere: state.DefaultPath},
		{name: "-state without a block", flag: stateFlag{path: "prod.json", given: true}, wantWhere: "prod.json"},
		{name: "file block", block: fileBlock, flag: stateFlag{path: state.DefaultPath}, wantWhere: "conf/shop.json"},
		{name: "-state wins over a file block", block: fileBlock, flag: stateFlag{path: "other.json", given: true}, wantWhere: "other.json"},
		{name: "etcd", block: etcdBlock(nil), flag: stateFlag{path: state.DefaultPath}, wantWhere: "etcd:dockplan/shop"},
		{name: "-state with etcd", block: etcdBlock(nil), flag: stateFlag{path: "x.json", given: true},
			wantErr: []string{"-state=x.json names a state file", "state block at state.dockplan.hcl:7", "Remove -state", "state migrate"}},
		{name: "missing CA file", block: etcdBlock(&hclspec.StateTLS{CAFile: filepath.Join(dir, "nope.pem")}), flag: stateFlag{path: state.DefaultPath},
			wantErr: []string{"ca_file", "state.dockplan.hcl:7", "nope.pem", "no such file or directory", "fix the path"}},
		{name: "key file a directory", block: etcdBlock(&hclspec.StateTLS{CAFile: ca, CertFile: ca, KeyFile: dir}), flag: stateFlag{path: state.DefaultPath},
			wantErr: []string{"key_file", "not a regular file"}},
		{name: "CA file that is no PEM", block: etcdBlock(&hclspec.StateTLS{CAFile: ca}), flag: stateFlag{path: state.DefaultPath},
			wantErr: []string{"state.dockplan.hcl:7", "holds no PEM certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := openBackend(tt.block, tt.flag)
			if len(tt.wantErr) > 0 {
				if err == nil {
					b.Close()
					t.Fatal("openBackend succeeded; want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.where != tt.wantWhere {
				t.Errorf("where = %q, want %q", b.where, tt.wantWhere)
			}
			if _, isEtcd := b.Backend.(*etcdstate.Backend); isEtcd != (tt.block != nil && tt.block.Backend == hclspec.StateEtcd) || isEtcd != b.isEtcd() {
				t.Errorf("backend %T for block %+v", b.Backend, tt.block)
			}
		})
	}
}

func declAt(file string, line int) hcl.Range {
	return hcl.Range{Filename: file, Start: hcl.Pos{Line: line}}
}

// etcdProject is a configuration folder whose state block points at a
// fresh prefix of c.
type etcdProject struct {
	dir, prefix string
	c           *etcdtest.Cluster
}

func newEtcdProject(t *testing.T, c *etcdtest.Cluster, project string) *etcdProject {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	p := &etcdProject{dir: t.TempDir(), prefix: fmt.Sprintf("dockplan-test/%x", rnd), c: c}
	p.write(t, project, p.stateBlock())
	return p
}

func (p *etcdProject) stateBlock() string {
	return fmt.Sprintf("state {\n  backend      = \"etcd\"\n  endpoints    = [%s]\n  prefix       = %q\n  dial_timeout = \"2s\"\n  lock_ttl     = \"3s\"\n}\n",
		quoteList(p.c.Endpoints()), p.prefix)
}

func (p *etcdProject) write(t *testing.T, project, extra string) {
	t.Helper()
	src := fmt.Sprintf("project = %q\n\n%s", project, extra)
	if err := os.WriteFile(filepath.Join(p.dir, "main.dockplan.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// backend opens the project's etcd state directly, closed with the test.
func (p *etcdProject) backend(t *testing.T) *etcdstate.Backend {
	t.Helper()
	b, err := etcdstate.New(etcdstate.Options{Endpoints: p.c.Endpoints(), Prefix: p.prefix, LockTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// sample is a state of project with n instances at serial.
func sample(project string, serial int64, n int) *state.State {
	st := statetest.Sample(serial, n)
	st.Project = project
	return st
}

// TestStateCommandsUseEtcd: with an etcd state block, state list, show,
// rm and force-unlock work on the etcd state, and -state is refused.
func TestStateCommandsUseEtcd(t *testing.T) {
	c := etcdtest.Start(t)
	p := newEtcdProject(t, c, "shop")
	if _, stderr, code := runDockplan(t, p.dir, "state", "list"); code != ExitError || !strings.Contains(stderr, "there is no state in etcd:"+p.prefix) {
		t.Fatalf("state list before any save exited %d:\n%s", code, stderr)
	}
	b := p.backend(t)
	st := sample("shop", 1, 3)
	if err := b.Save(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	addrs := st.Addresses()
	out, stderr, code := runDockplan(t, p.dir, "state", "list")
	if code != 0 || !strings.Contains(out, addrs[0]) || !strings.Contains(out, addrs[2]) {
		t.Fatalf("state list exited %d:\n%s%s", code, out, stderr)
	}
	if out, stderr, code := runDockplan(t, p.dir, "state", "show", addrs[1]); code != 0 || !strings.Contains(out, st.Instances[addrs[1]].Name) {
		t.Fatalf("state show exited %d:\n%s%s", code, out, stderr)
	}
	if _, stderr, code := runDockplan(t, p.dir, "state", "list", "-state", "x.json"); code != ExitError || !strings.Contains(stderr, "-state=x.json names a state file") {
		t.Errorf("state list -state with an etcd block exited %d:\n%s", code, stderr)
	}
	if out, stderr, code := runDockplan(t, p.dir, "state", "rm", addrs[0]); code != 0 || !strings.Contains(out, "Removed 1 instance") {
		t.Fatalf("state rm exited %d:\n%s%s", code, out, stderr)
	}
	got, err := b.Load(t.Context())
	if err != nil || got.Serial != 2 || got.Instances[addrs[0]] != nil || len(got.Instances) != 2 {
		t.Fatalf("after state rm: %+v %v; want serial 2 without %s", got, err, addrs[0])
	}

	// A lock left by a holder that is gone: force-unlock with its ID.
	holder := p.backend(t)
	id, err := holder.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runDockplan(t, p.dir, "state", "rm", addrs[1]); code != ExitError || !strings.Contains(stderr, id) || !strings.Contains(stderr, "force-unlock") {
		t.Errorf("state rm while locked exited %d; want the holder named:\n%s", code, stderr)
	}
	if out, stderr, code := runDockplan(t, p.dir, "force-unlock", id); code != 0 || !strings.Contains(out, "The state lock was broken") {
		t.Fatalf("force-unlock exited %d:\n%s%s", code, out, stderr)
	}
	if out, stderr, code := runDockplan(t, p.dir, "state", "rm", addrs[1]); code != 0 {
		t.Fatalf("state rm after force-unlock exited %d:\n%s%s", code, out, stderr)
	}
}

// TestStateMigrate moves a state from a file to etcd and back, keeping
// lineage and serial, and refuses destinations that hold another state or
// a newer version of this one.
func TestStateMigrate(t *testing.T) {
	c := etcdtest.Start(t)
	p := newEtcdProject(t, c, "shop")
	p.write(t, "shop", "") // no state block yet: the file is the configured state
	file := state.NewFile(filepath.Join(p.dir, state.DefaultPath))
	st := sample("shop", 7, 2)
	if err := file.Save(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	etcdArgs := []string{"-endpoints", strings.Join(c.Endpoints(), ","), "-prefix", p.prefix}

	// Flags that do not make sense.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{args: []string{"state", "migrate"}, want: "say where the state goes, -to=etcd or -to=file"},
		{args: []string{"state", "migrate", "-to=s3"}, want: `-to="s3"`},
		{args: []string{"state", "migrate", "-to=etcd"}, want: "give the etcd side with -endpoints and -prefix"},
		{args: []string{"state", "migrate", "-to=etcd", "-endpoints", "tcp://127.0.0.1:2379", "-prefix", "p"}, want: "-endpoints: \"tcp://127.0.0.1:2379\": the scheme tcp:// is not supported"},
		{args: []string{"state", "migrate", "-to=etcd", "-endpoints", c.Endpoints()[0], "-prefix", "a b"}, want: "-prefix: \"a b\" is not a key prefix"},
		{args: []string{"state", "migrate", "-to=etcd", "-endpoints", c.Endpoints()[0], "-prefix", "p", "-ca-file", "ca.pem"}, want: "apply to https:// endpoints only"},
	} {
		if _, stderr, code := runDockplan(t, p.dir, tc.args...); code != ExitError || !strings.Contains(stderr, tc.want) {
			t.Errorf("dockplan %s exited %d; want %q:\n%s", strings.Join(tc.args, " "), code, tc.want, stderr)
		}
	}

	// File → etcd, from flags; the configuration still names the file.
	out, stderr, code := runDockplan(t, p.dir, append([]string{"state", "migrate", "-to=etcd"}, etcdArgs...)...)
	if code != 0 {
		t.Fatalf("migrate -to=etcd exited %d:\n%s%s", code, out, stderr)
	}
	for _, w := range []string{"Migrated the state of project \"shop\"", "serial 7", "etcd:" + p.prefix, "The configuration still names dockplan.state.json",
		"backend   = \"etcd\"", fmt.Sprintf("prefix    = %q", p.prefix), "was left as it was", "rm dockplan.state.json dockplan.state.json.backup"} {
		if !strings.Contains(out, w) {
			t.Errorf("migrate output does not say %q:\n%s", w, out)
		}
	}
	b := p.backend(t)
	got, err := b.Load(t.Context())
	if err != nil || got == nil || got.Lineage != st.Lineage || got.Serial != 7 || len(got.Instances) != 2 {
		t.Fatalf("etcd holds %+v (%v); want lineage %s serial 7", got, err, st.Lineage)
	}
	if src, err := file.Load(t.Context()); err != nil || src == nil || src.Serial != 7 {
		t.Errorf("the source file changed: %+v %v", src, err)
	}
	// Again: nothing to do.
	if out, _, code := runDockplan(t, p.dir, append([]string{"state", "migrate", "-to=etcd"}, etcdArgs...)...); code != 0 || !strings.Contains(out, "already holds this state") {
		t.Errorf("second migrate exited %d:\n%s", code, out)
	}

	// The team works on etcd now (serial 9); the file is an older copy.
	p.write(t, "shop", p.stateBlock())
	got.Serial = 8
	if err := b.Save(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	got.Serial = 9
	delete(got.Instances, got.Addresses()[0])
	if err := b.Save(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	// A newer version in the destination is refused: file → etcd again.
	if _, stderr, code := runDockplan(t, p.dir, "state", "migrate", "-to=etcd"); code != ExitError ||
		!strings.Contains(stderr, "already holds a newer version of this state (serial 9") || !strings.Contains(stderr, "Nothing was migrated") {
		t.Errorf("migrate over a newer state exited %d:\n%s", code, stderr)
	}
	// Etcd flags with an etcd block are refused.
	if _, stderr, code := runDockplan(t, p.dir, append([]string{"state", "migrate", "-to=file"}, etcdArgs...)...); code != ExitError || !strings.Contains(stderr, "already gives the etcd settings") {
		t.Errorf("migrate with both a block and flags exited %d:\n%s", code, stderr)
	}

	// Etcd → file: the older file copy (serial 7) is replaced, kept as .backup.
	out, stderr, code = runDockplan(t, p.dir, "state", "migrate", "-to=file")
	if code != 0 || !strings.Contains(out, "from etcd:"+p.prefix+" to dockplan.state.json") || !strings.Contains(out, "Remove the state block at main.dockplan.hcl:3") ||
		!strings.Contains(out, "etcdctl del --prefix "+p.prefix+"/") {
		t.Fatalf("migrate -to=file exited %d:\n%s%s", code, out, stderr)
	}
	back, err := file.Load(t.Context())
	if err != nil || back.Lineage != st.Lineage || back.Serial != 9 || len(back.Instances) != 1 {
		t.Fatalf("the file holds %+v (%v); want serial 9 with 1 instance", back, err)
	}
	old, err := state.Read(filepath.Join(p.dir, state.DefaultPath+".backup"))
	if err != nil || old == nil || old.Serial != 7 {
		t.Errorf("the replaced copy is not the .backup: %+v %v", old, err)
	}
	for _, name := range []string{state.DefaultPath, state.DefaultPath + ".backup"} {
		if fi, err := os.Stat(filepath.Join(p.dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", name, err, fi.Mode().Perm())
		}
	}

	// Another lineage in the destination is refused and left alone.
	other := sample("shop", 3, 1)
	other.Lineage = state.NewLineage()
	otherFile := filepath.Join(p.dir, "other.json")
	if err := state.NewFile(otherFile).Save(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runDockplan(t, p.dir, "state", "migrate", "-to=file", "-state", "other.json"); code != ExitError ||
		!strings.Contains(stderr, "other.json already holds another state (lineage "+other.Lineage) || !strings.Contains(stderr, "rm other.json other.json.backup") {
		t.Errorf("migrate over another lineage exited %d:\n%s", code, stderr)
	}
	if kept, err := state.Read(otherFile); err != nil || kept.Lineage != other.Lineage || kept.Serial != 3 {
		t.Errorf("the other state was touched: %+v %v", kept, err)
	}
}

// TestStateMigrateHoldsBothLocks: while another dockplan holds the
// destination's lock, migrate fails naming it and writes nothing; the
// source's lock is released.
func TestStateMigrateHoldsBothLocks(t *testing.T) {
	c := etcdtest.Start(t)
	p := newEtcdProject(t, c, "shop")
	file := state.NewFile(filepath.Join(p.dir, state.DefaultPath))
	if err := file.Save(t.Context(), sample("shop", 2, 1)); err != nil {
		t.Fatal(err)
	}
	holder := p.backend(t)
	info := state.NewLockInfo("apply")
	id, err := holder.Lock(t.Context(), info)
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runDockplan(t, p.dir, "state", "migrate", "-to=etcd")
	if code != ExitError || !strings.Contains(stderr, id) || !strings.Contains(stderr, "Nothing was migrated") {
		t.Fatalf("migrate while etcd is locked exited %d:\n%s", code, stderr)
	}
	if st, err := holder.Load(t.Context()); err != nil || st != nil {
		t.Fatalf("etcd holds %+v (%v); want nothing", st, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	fid, err := file.Lock(ctx, state.NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("the source's lock was not released: %v", err)
	}
	_ = file.Unlock(ctx, fid)
	if err := holder.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := runDockplan(t, p.dir, "state", "migrate", "-to=etcd"); code != 0 || !strings.Contains(out, "The configuration names etcd:"+p.prefix+", so dockplan uses it from now on") {
		t.Fatalf("migrate once the lock is free exited %d:\n%s%s", code, out, stderr)
	}
}

package etcdstate

import (
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/dockplan/dockplan/state"
	"github.com/dockplan/dockplan/state/etcdstate/etcdtest"
	"github.com/dockplan/dockplan/state/statetest"
)

// enableAuth turns on authentication with a root user and a user
// "dockplan" (password "s3cret") that may read and write under prefix/.
func enableAuth(t *testing.T, c *etcdtest.Cluster, prefix string) {
	t.Helper()
	admin, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := t.Context()
	_, _ = admin.RoleAdd(ctx, "root") // exists already on some versions
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "dockplan"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "dockplan", prefix+"/", clientv3.GetPrefixRangeEnd(prefix+"/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "dockplan", "s3cret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "dockplan", "dockplan"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
}

// The user and password come from the environment; missing, wrong or
// insufficient credentials fail with a message naming the variables.
func TestCredentialsFromEnvironment(t *testing.T) {
	c := etcdtest.StartWith(t, etcdtest.Options{Members: 1})
	prefix := freshPrefix()
	enableAuth(t, c, prefix)
	opts := Options{Endpoints: c.Endpoints(), Prefix: prefix, Timeout: time.Second}

	t.Run("none", func(t *testing.T) {
		t.Setenv(UsernameEnv, "")
		t.Setenv(PasswordEnv, "")
		b, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_, err = b.Load(t.Context())
		if err == nil || !strings.Contains(err.Error(), UsernameEnv) || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("load without credentials = %v; want a message naming %s", err, UsernameEnv)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Setenv(UsernameEnv, "dockplan")
		t.Setenv(PasswordEnv, "wrong")
		b, err := New(opts)
		if err == nil {
			b.Close()
			t.Fatal("New with a wrong password succeeded")
		}
		if !strings.Contains(err.Error(), "refused dockplan's credentials") || !strings.Contains(err.Error(), PasswordEnv) {
			t.Errorf("message %q does not say the credentials were refused", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("message %q shows the password", err)
		}
	})
	t.Run("other prefix", func(t *testing.T) {
		t.Setenv(UsernameEnv, "dockplan")
		t.Setenv(PasswordEnv, "s3cret")
		other := opts
		other.Prefix = freshPrefix()
		b, err := New(other)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		err = b.Save(t.Context(), statetest.Sample(1, 1))
		if err == nil || !strings.Contains(err.Error(), "denied") || !strings.Contains(err.Error(), other.Prefix+"/") {
			t.Fatalf("save outside the user's keys = %v; want permission denied naming the prefix", err)
		}
	})
	t.Run("right", func(t *testing.T) {
		t.Setenv(UsernameEnv, "dockplan")
		t.Setenv(PasswordEnv, "s3cret")
		b, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		id, err := b.Lock(t.Context(), state.NewLockInfo("apply"))
		if err != nil {
			t.Fatalf("lock: %v", err)
		}
		if err := b.Save(t.Context(), statetest.Sample(1, 2)); err != nil {
			t.Fatalf("save: %v", err)
		}
		if s, err := b.Load(t.Context()); err != nil || s.Serial != 1 {
			t.Fatalf("load = %v, %v", s, err)
		}
		if err := b.Unlock(t.Context(), id); err != nil {
			t.Fatalf("unlock: %v", err)
		}
	})
}

// With TLS options the backend talks to members that require client
// certificates; without a client certificate it fails saying so.
func TestTLS(t *testing.T) {
	files := etcdtest.NewTLS(t)
	c := etcdtest.StartWith(t, etcdtest.Options{Members: 1, TLS: files})
	prefix := freshPrefix()
	b, err := New(Options{Endpoints: c.Endpoints(), Prefix: prefix, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	id, err := b.Lock(t.Context(), state.NewLockInfo("apply"))
	if err != nil {
		t.Fatalf("lock over TLS: %v", err)
	}
	if err := b.Save(t.Context(), statetest.Sample(1, 1)); err != nil {
		t.Fatalf("save over TLS: %v", err)
	}
	if err := b.Unlock(t.Context(), id); err != nil {
		t.Fatal(err)
	}

	noCert, err := New(Options{Endpoints: c.Endpoints(), Prefix: prefix, CAFile: files.CA, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	_, err = noCert.Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), c.Endpoints()[0]) {
		t.Fatalf("load without a client certificate = %v; want a TLS error naming the endpoint", err)
	}
	t.Logf("without a client certificate: %v", err)
}

package hclspec

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// StateBackend is where the state lives.
type StateBackend int

const (
	// StateFile keeps the state in a local file (the default).
	StateFile StateBackend = iota
	// StateEtcd keeps the state in an etcd cluster, shared by a team.
	StateEtcd
)

// String returns the backend as written in HCL.
func (b StateBackend) String() string {
	if b == StateEtcd {
		return "etcd"
	}
	return "file"
}

// stateBackendNames are the backends a state block may name, in the order
// messages list them.
var stateBackendNames = []string{"file", "etcd"}

// StateConfig is the state block: which backend holds the state and how to
// reach it. Its values are literals (no variables, locals or references):
// the state commands read it without -var values. Credentials are never
// part of it; the etcd backend reads them from the environment.
type StateConfig struct {
	// Backend is the backend the block names.
	Backend StateBackend
	// Path is the state file of the file backend, resolved against the
	// configuration directory; empty for etcd.
	Path string
	// Endpoints are the etcd members' client URLs (http:// or https://,
	// all with the same scheme), at least one; empty for the file backend.
	Endpoints []string
	// Prefix is the etcd key prefix of this state, without a trailing
	// slash ("dockplan/shop").
	Prefix string
	// DialTimeout bounds each etcd operation's wait for a leader and a
	// quorum; zero means the backend's default.
	DialTimeout time.Duration
	// LockTTL is the lease TTL of the etcd state lock; zero means the
	// backend's default.
	LockTTL time.Duration
	// TLS holds the etcd client's TLS files, resolved against the
	// configuration directory; nil when the block has no tls block. They
	// are checked when the backend is opened, not when decoding.
	TLS *StateTLS
	// DeclRange is where the block starts, for messages.
	DeclRange hcl.Range
}

// StateTLS are the files of the etcd client's TLS settings. Each may be
// empty: CAFile empty means the system's authorities; CertFile and KeyFile
// are both set or both empty.
type StateTLS struct {
	CAFile, CertFile, KeyFile string
}

// Where returns "FILE:LINE" of the block, for messages outside HCL
// diagnostics.
func (s *StateConfig) Where() string {
	return fmt.Sprintf("%s:%d", s.DeclRange.Filename, s.DeclRange.Start.Line)
}

var stateSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "backend", Required: true}, {Name: "path"}, {Name: "endpoints"}, {Name: "prefix"},
		{Name: "dial_timeout"}, {Name: "lock_ttl"},
		// Declared only to refuse them with a better message than
		// "Unsupported argument".
		{Name: "username"}, {Name: "password"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}},
}

var stateTLSSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "ca_file"}, {Name: "cert_file"}, {Name: "key_file"}},
}

// stateAttrsOf lists the attributes each backend takes besides backend.
var stateAttrsOf = map[StateBackend][]string{
	StateFile: {"path"},
	StateEtcd: {"endpoints", "prefix", "dial_timeout", "lock_ttl"},
}

// statePrefix is an etcd key prefix: segments of letters, digits, dots,
// underscores and dashes, joined by slashes, with an optional leading
// slash.
var statePrefix = regexp.MustCompile(`^/?[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?$`)

// The bounds of lock_ttl: etcd counts lease TTLs in whole seconds, and a
// dead holder blocks everyone for up to the TTL.
const (
	minStateLockTTL = time.Second
	maxStateLockTTL = 10 * time.Minute
)

// LoadState reads only the state block of the configuration in dir, for
// commands that need the state but not the rest of the configuration
// (state list, show, rm, migrate, force-unlock): no variable values are
// needed, and other blocks are not checked. A directory without
// configuration files gives nil and no diagnostics (the default state
// file).
func LoadState(dir string) (*StateConfig, map[string]*hcl.File, hcl.Diagnostics) {
	srcs, diags := readSources(dir)
	if diags.HasErrors() || len(srcs) == 0 {
		return nil, nil, diags
	}
	parser := hclparse.NewParser()
	var blocks []*hcl.Block
	for _, name := range sortedKeys(srcs) {
		f, d := parser.ParseHCL(srcs[name], name)
		diags = append(diags, d...)
		if f == nil || d.HasErrors() {
			continue
		}
		content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "state"}}})
		blocks = append(blocks, content.Blocks...)
	}
	if diags.HasErrors() {
		return nil, parser.Files(), sortDiags(diags)
	}
	d := &decoder{cfg: &Config{Dir: dir, Files: parser.Files()}, dir: dir}
	d.cfg.funcs = functions(dir, &budget{})
	d.decodeState(blocks)
	diags = append(diags, d.diags...)
	if diags.HasErrors() {
		return nil, parser.Files(), sortDiags(diags)
	}
	return d.cfg.State, parser.Files(), sortDiags(diags)
}

// decodeState decodes the state blocks into d.cfg.State: at most one.
func (d *decoder) decodeState(blocks []*hcl.Block) {
	for i, b := range blocks {
		if i > 0 {
			d.errorf(b.DefRange.Ptr(), "Duplicate state block",
				"The state is already configured by the state block at %s; keep one state block in the whole configuration.", blocks[0].DefRange)
			continue
		}
		d.cfg.State = d.decodeStateBlock(b)
	}
}

// decodeStateBlock decodes one state block; nil when it has errors.
func (d *decoder) decodeStateBlock(b *hcl.Block) *StateConfig {
	errs := len(d.diags)
	content, diags := b.Body.Content(stateSchema)
	d.diags = append(d.diags, diags...)
	if content == nil {
		return nil
	}
	sc := &StateConfig{DeclRange: b.DefRange}
	for _, name := range []string{"username", "password"} {
		if a, ok := content.Attributes[name]; ok {
			// The message points at the block, not at the attribute, so
			// that the source snippet does not show the secret again.
			d.errorf(b.DefRange.Ptr(), "Credentials do not belong in the configuration",
				"The state block does not take %s (line %d): dockplan reads the etcd user and password only from the environment variables DOCKPLAN_ETCD_USERNAME and DOCKPLAN_ETCD_PASSWORD, so that they never land in a file others read. Remove %s, set those variables where dockplan runs, and change the password if this file was shared.", name, a.NameRange.Start.Line, name)
		}
	}
	a, ok := content.Attributes["backend"]
	if !ok {
		return nil // reported by Content
	}
	name, ok := d.staticString(a, "backend")
	if !ok {
		return nil
	}
	switch name {
	case "file":
		sc.Backend = StateFile
	case "etcd":
		sc.Backend = StateEtcd
	default:
		detail := fmt.Sprintf("backend = %q is not a state backend; use \"file\" (a local file, the default) or \"etcd\" (a shared etcd cluster).", name)
		if s := suggest(name, stateBackendNames); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		d.errorf(a.Expr.Range().Ptr(), "Unknown state backend", "%s", detail)
		return nil
	}
	d.checkStateAttrs(sc, content)
	if sc.Backend == StateFile {
		d.decodeStateFile(b, sc, content)
	} else {
		d.decodeStateEtcd(b, sc, content)
	}
	if len(d.diags) > errs && d.diags[errs:].HasErrors() {
		return nil
	}
	return sc
}

// checkStateAttrs refuses attributes and blocks of the other backend.
func (d *decoder) checkStateAttrs(sc *StateConfig, content *hcl.BodyContent) {
	allowed := map[string]bool{"backend": true, "username": true, "password": true}
	for _, n := range stateAttrsOf[sc.Backend] {
		allowed[n] = true
	}
	for _, a := range attrsInOrder(content.Attributes) {
		if !allowed[a.Name] {
			d.errorf(a.NameRange.Ptr(), "Attribute of another backend",
				"%s applies to backend = %q, not %q; remove it, or change backend.", a.Name, otherBackend(sc.Backend), sc.Backend)
		}
	}
	for _, blk := range content.Blocks {
		if sc.Backend != StateEtcd {
			d.errorf(blk.DefRange.Ptr(), "Block of another backend",
				"A tls block applies to backend = \"etcd\"; a state file needs none. Remove it, or change backend.")
		}
	}
}

func otherBackend(b StateBackend) StateBackend {
	if b == StateEtcd {
		return StateFile
	}
	return StateEtcd
}

// decodeStateFile reads the file backend's path.
func (d *decoder) decodeStateFile(b *hcl.Block, sc *StateConfig, content *hcl.BodyContent) {
	a, ok := content.Attributes["path"]
	if !ok {
		d.errorf(b.DefRange.Ptr(), "Missing state file path",
			"A state block with backend = \"file\" needs path = \"…\", the state file, relative to the configuration directory (such as \"dockplan.state.json\"). Remove the whole block to use dockplan.state.json beside the configuration.")
		return
	}
	path, ok := d.staticString(a, "path")
	if !ok {
		return
	}
	if strings.TrimSpace(path) == "" || strings.HasSuffix(path, "/") {
		d.errorf(a.Expr.Range().Ptr(), "Invalid state file path", "path must name a file, such as \"dockplan.state.json\" or \"state/shop.json\", not %q.", path)
		return
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(d.dir, path)
	}
	sc.Path = path
}

// decodeStateEtcd reads the etcd backend's settings.
func (d *decoder) decodeStateEtcd(b *hcl.Block, sc *StateConfig, content *hcl.BodyContent) {
	if a, ok := content.Attributes["endpoints"]; ok {
		sc.Endpoints = d.decodeEndpoints(b, a)
	} else {
		d.errorf(b.DefRange.Ptr(), "Missing etcd endpoints",
			"A state block with backend = \"etcd\" needs endpoints = [\"https://10.0.0.5:2379\", …], the client URLs of the etcd members (give every member).")
	}
	if a, ok := content.Attributes["prefix"]; ok {
		if p, ok := d.staticString(a, "prefix"); ok {
			if !statePrefix.MatchString(p) {
				d.errorf(a.Expr.Range().Ptr(), "Invalid etcd key prefix",
					"prefix = %q must be one or more names of letters, digits, dots, underscores and dashes joined by slashes, such as \"dockplan/shop\"; give each state its own.", p)
			} else {
				sc.Prefix = strings.TrimRight(p, "/")
			}
		}
	} else {
		d.errorf(b.DefRange.Ptr(), "Missing etcd key prefix",
			"A state block with backend = \"etcd\" needs prefix = \"…\", the key prefix of this state, such as \"dockplan/shop\"; every state needs its own.")
	}
	if a, ok := content.Attributes["dial_timeout"]; ok {
		sc.DialTimeout = d.stateDuration(a, time.Second, 5*time.Minute)
	}
	if a, ok := content.Attributes["lock_ttl"]; ok {
		sc.LockTTL = d.stateDuration(a, minStateLockTTL, maxStateLockTTL)
	}
	for i, blk := range content.Blocks {
		if i > 0 {
			d.errorf(blk.DefRange.Ptr(), "Duplicate tls block", "The state block already has a tls block at %s; keep one.", content.Blocks[0].DefRange)
			continue
		}
		sc.TLS = d.decodeStateTLS(blk)
	}
	d.checkEndpointSchemes(sc, content)
}

// decodeEndpoints reads and checks the endpoints list.
func (d *decoder) decodeEndpoints(b *hcl.Block, a *hcl.Attribute) []string {
	val, ok := d.evalStatic(a.Expr, stateLiteral("endpoints"))
	if !ok {
		return nil
	}
	list, ok := d.toStringList(a, val)
	if !ok {
		return nil
	}
	rng := a.Expr.Range().Ptr()
	if len(list) == 0 {
		d.errorf(rng, "No etcd endpoints", "endpoints is empty; give the client URL of every etcd member, such as [\"https://10.0.0.5:2379\", \"https://10.0.0.6:2379\", \"https://10.0.0.7:2379\"].")
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, ep := range list {
		if err := checkEtcdEndpoint(ep); err != nil {
			if u, perr := url.Parse(ep); perr == nil && u.User != nil {
				// The block, not the attribute: its snippet would show
				// the password.
				d.errorf(b.DefRange.Ptr(), "Invalid etcd endpoint", "endpoints (line %d): %s", a.NameRange.Start.Line, err)
				continue
			}
			d.errorf(rng, "Invalid etcd endpoint", "%s", err)
			continue
		}
		ep = strings.TrimRight(ep, "/")
		if seen[ep] {
			d.errorf(rng, "Duplicate etcd endpoint", "%s is listed twice; list each member once.", ep)
			continue
		}
		seen[ep] = true
		out = append(out, ep)
	}
	return out
}

// checkEtcdEndpoint checks one endpoint URL: http:// or https://, a host
// and a port, nothing else.
func checkEtcdEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%q is not a URL; write the member's client URL, such as \"https://10.0.0.5:2379\".", ep)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the scheme %s:// is not supported; etcd members are reached over https:// (or http:// without TLS).", redactURL(u), u.Scheme)
	case u.User != nil:
		return fmt.Errorf("%q carries credentials; remove them from the URL and set DOCKPLAN_ETCD_USERNAME and DOCKPLAN_ETCD_PASSWORD in the environment instead.", redactURL(u))
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("%q has a path or query; an etcd endpoint is only scheme, host and port.", ep)
	case u.Port() == "":
		return fmt.Errorf("%q has no port; etcd members listen for clients on 2379 by default: write %s://%s:2379.", ep, u.Scheme, u.Hostname())
	}
	return checkPort(u.Port())
}

// redactURL prints u with any password hidden.
func redactURL(u *url.URL) string { return u.Redacted() }

// checkEndpointSchemes requires one scheme for all endpoints, https with
// a tls block, and warns about plain http to another machine.
func (d *decoder) checkEndpointSchemes(sc *StateConfig, content *hcl.BodyContent) {
	if len(sc.Endpoints) == 0 {
		return
	}
	rng := content.Attributes["endpoints"].Expr.Range().Ptr()
	schemes := map[string]bool{}
	remote := ""
	for _, ep := range sc.Endpoints {
		u, _ := url.Parse(ep)
		schemes[u.Scheme] = true
		if u.Scheme == "http" && !isLoopback(u.Hostname()) && remote == "" {
			remote = u.Hostname()
		}
	}
	switch {
	case len(schemes) > 1:
		d.errorf(rng, "Mixed etcd endpoint schemes", "Some endpoints are http:// and some https://; one client talks to all members the same way. Use https:// for every one (with a tls block when needed) or http:// for every one.")
	case schemes["http"] && sc.TLS != nil:
		d.errorf(content.Blocks[0].DefRange.Ptr(), "TLS settings for http:// endpoints", "The tls block applies only to https:// endpoints; change the endpoints to https://, or remove the tls block.")
	case remote != "":
		d.warnf(rng, "Unencrypted etcd connection",
			"The endpoints are plain http:// to %s: the state, which holds every container's environment (secrets included), and the etcd password would cross the network unencrypted. Use https:// endpoints.", remote)
	}
}

// decodeStateTLS reads the tls block of an etcd state block.
func (d *decoder) decodeStateTLS(b *hcl.Block) *StateTLS {
	content, diags := b.Body.Content(stateTLSSchema)
	d.diags = append(d.diags, diags...)
	t := &StateTLS{}
	if len(content.Attributes) == 0 {
		d.errorf(b.DefRange.Ptr(), "Empty tls block",
			"Set ca_file (the authority that signed the members' certificates) and, for members started with --client-cert-auth, cert_file and key_file; or remove the block to use the system's authorities.")
		return t
	}
	for _, a := range attrsInOrder(content.Attributes) {
		s, ok := d.staticString(a, a.Name)
		if !ok {
			continue
		}
		if strings.TrimSpace(s) == "" {
			d.errorf(a.Expr.Range().Ptr(), "Empty file name", "%s must name a PEM file.", a.Name)
			continue
		}
		if !filepath.IsAbs(s) {
			s = filepath.Join(d.dir, s)
		}
		switch a.Name {
		case "ca_file":
			t.CAFile = s
		case "cert_file":
			t.CertFile = s
		case "key_file":
			t.KeyFile = s
		}
	}
	if (content.Attributes["cert_file"] == nil) != (content.Attributes["key_file"] == nil) {
		d.errorf(b.DefRange.Ptr(), "Incomplete client certificate",
			"A client certificate needs both cert_file and key_file (its private key); set both, or neither when the members do not ask for one.")
	}
	return t
}

// staticString evaluates a literal string attribute of the state block.
func (d *decoder) staticString(a *hcl.Attribute, what string) (string, bool) {
	val, ok := d.evalStatic(a.Expr, stateLiteral(what))
	if !ok {
		return "", false
	}
	return d.toString(a, val)
}

// stateLiteral words why a state block attribute must be a literal.
func stateLiteral(what string) string {
	return "The state block is read before variables and locals (state commands take no -var), so its " + what
}

// stateDuration reads a duration attribute within [min, max].
func (d *decoder) stateDuration(a *hcl.Attribute, min, max time.Duration) time.Duration {
	s, ok := d.staticString(a, a.Name)
	if !ok {
		return 0
	}
	dur, err := ParseDuration(s)
	if err == nil && (dur < min || dur > max) {
		err = fmt.Errorf("%q must be from %s to %s", s, min, max)
	}
	if err != nil {
		d.errorf(a.Expr.Range().Ptr(), "Invalid duration", "%s %s.", a.Name, err)
		return 0
	}
	return dur
}

// CheckEtcdEndpoints checks etcd endpoints given outside a state block
// (state migrate's flags) as a state block's are: at least one, each an
// http:// or https:// URL with a host and a port and nothing else, no
// repeats, and one scheme for all. It returns them without trailing
// slashes.
func CheckEtcdEndpoints(endpoints []string) ([]string, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no endpoints; give the client URL of every etcd member, such as https://10.0.0.5:2379")
	}
	seen := map[string]bool{}
	schemes := map[string]bool{}
	var out []string
	for _, ep := range endpoints {
		if err := checkEtcdEndpoint(ep); err != nil {
			return nil, err
		}
		ep = strings.TrimRight(ep, "/")
		if seen[ep] {
			return nil, fmt.Errorf("%s is listed twice; list each member once", ep)
		}
		seen[ep] = true
		u, _ := url.Parse(ep)
		schemes[u.Scheme] = true
		out = append(out, ep)
	}
	if len(schemes) > 1 {
		return nil, errors.New("some endpoints are http:// and some https://; use https:// for every one or http:// for every one")
	}
	return out, nil
}

// CheckEtcdPrefix checks an etcd key prefix given outside a state block
// as a state block's is, and returns it without a trailing slash.
func CheckEtcdPrefix(prefix string) (string, error) {
	if !statePrefix.MatchString(prefix) {
		return "", fmt.Errorf("%q is not a key prefix: give one or more names of letters, digits, dots, underscores and dashes joined by slashes, such as dockplan/shop", prefix)
	}
	return strings.TrimRight(prefix, "/"), nil
}

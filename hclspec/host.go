package hclspec

import (
	"fmt"
	"math/big"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var hostSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "address"}, {Name: "context"}, {Name: "public_address"},
		{Name: "labels"}, {Name: "insecure"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "capacity"}, {Type: "reserve"}, {Type: "tls"}},
}

var resourcesSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cpu"}, {Name: "memory"}},
}

var tlsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "ca_file", Required: true}, {Name: "cert_file", Required: true}, {Name: "key_file", Required: true},
	},
}

var hostName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,62}$`)

// DefaultDockerHost is the engine of the implicit host when DOCKER_HOST is
// not set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

func (d *decoder) decodeHosts(blocks []*hcl.Block) {
	seen := map[string]*Host{}
	for _, b := range blocks {
		h := d.decodeHost(b)
		if h == nil {
			continue
		}
		if prev := seen[h.Name]; prev != nil {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate host",
				"A host named %q was already declared at %s. Host names must be unique.", h.Name, prev.DeclRange)
			continue
		}
		seen[h.Name] = h
		d.cfg.Hosts = append(d.cfg.Hosts, h)
	}
	if len(blocks) == 0 {
		d.cfg.Hosts = []*Host{d.implicitHost()}
	}
}

// implicitHost is the engine DOCKER_HOST (or DOCKER_CONTEXT, or the default
// socket) names, as the docker CLI would pick it.
func (d *decoder) implicitHost() *Host {
	env := map[string]string{}
	for _, kv := range d.opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	h := &Host{Name: "local", Implicit: true, Labels: map[string]string{}}
	switch {
	case env["DOCKER_HOST"] != "":
		h.Address = env["DOCKER_HOST"]
	case env["DOCKER_CONTEXT"] != "" && env["DOCKER_CONTEXT"] != "default":
		h.Context = env["DOCKER_CONTEXT"]
	default:
		h.Address = DefaultDockerHost
	}
	if env["DOCKER_TLS_VERIFY"] != "" && strings.HasPrefix(h.Address, "tcp://") {
		dir := env["DOCKER_CERT_PATH"]
		if dir == "" {
			dir = filepath.Join(env["HOME"], ".docker")
		}
		h.TLS = &TLSFiles{
			CAFile:   filepath.Join(dir, "ca.pem"),
			CertFile: filepath.Join(dir, "cert.pem"),
			KeyFile:  filepath.Join(dir, "key.pem"),
		}
	}
	if h.Address == "" {
		return h
	}
	// The docker CLI talks plain tcp:// wherever DOCKER_HOST says; so does
	// the implicit host, with a warning.
	if u, err := url.Parse(h.Address); err == nil && u.Scheme == "tcp" && h.TLS == nil && !isLoopback(u.Hostname()) {
		h.Insecure = true
		d.warnf(nil, "Unencrypted Docker connection",
			"DOCKER_HOST=%s is plain tcp:// to another machine: Docker API calls, which give root there, go unencrypted and unauthenticated. Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or declare a host block with a tls block or an ssh:// address.", h.Address)
	}
	if err := checkAddress(h); err != nil {
		d.errorf(nil, "Invalid DOCKER_HOST",
			"With no host block, dockplan uses the engine DOCKER_HOST names, but %s Fix DOCKER_HOST, or declare a host block.", err)
	}
	return h
}

func (d *decoder) decodeHost(b *hcl.Block) *Host {
	h := &Host{Name: b.Labels[0], DeclRange: b.DefRange, Labels: map[string]string{}}
	if !hostName.MatchString(h.Name) {
		d.errorf(b.LabelRanges[0].Ptr(), "Invalid host name",
			"%q is not a valid host name: use up to 63 letters, digits, underscores and dashes, starting with a letter.", h.Name)
		return nil
	}
	content, diags := b.Body.Content(hostSchema)
	d.diags = append(d.diags, diags...)
	ctx := d.baseCtx()
	scope := refScope{what: "a host block"}
	str := func(name string, dst *string) *hcl.Attribute {
		a, ok := content.Attributes[name]
		if !ok {
			return nil
		}
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if s, ok := d.toString(a, val); ok && s == "" && name != "public_address" {
				d.errorf(a.Expr.Range().Ptr(), "Empty "+name, "Host %q: %s must not be empty.", h.Name, name)
			} else {
				*dst = s
			}
		}
		return a
	}
	addrAttr := str("address", &h.Address)
	ctxAttr := str("context", &h.Context)
	pubAttr := str("public_address", &h.PublicAddress)
	if a, ok := content.Attributes["labels"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if m, ok := d.toStringMap(a, val); ok {
				h.Labels = m
			}
		}
	}
	if a, ok := content.Attributes["insecure"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			h.Insecure, _ = d.toBool(a, val)
		}
	}
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "capacity":
			h.Capacity = d.decodeResources(blk, ctx, scope)
		case "reserve":
			if r := d.decodeResources(blk, ctx, scope); r != nil {
				h.Reserve = *r
			}
		case "tls":
			h.TLS = d.decodeTLS(blk, ctx, scope)
		}
	}
	d.checkHostAddress(b, h, addrAttr, ctxAttr)
	if pubAttr != nil && h.PublicAddress == "" {
		d.errorf(pubAttr.Expr.Range().Ptr(), "Empty public address", "Remove public_address to use the host part of address, or give a name or IP.")
	}
	d.checkReserve(b, h)
	return h
}

func (d *decoder) checkReserve(b *hcl.Block, h *Host) {
	if h.Capacity == nil {
		return
	}
	c, r := *h.Capacity, h.Reserve
	if (c.MilliCPU > 0 && r.MilliCPU >= c.MilliCPU) || (c.MemoryBytes > 0 && r.MemoryBytes >= c.MemoryBytes) {
		d.errorf(b.DefRange.Ptr(), "Reserve exceeds capacity",
			"Host %q reserves at least as much as its capacity, which leaves nothing to place containers on.", h.Name)
	}
}

// checkHostAddress validates address/context, the scheme, and that plain
// tcp:// goes only to loopback unless insecure = true.
func (d *decoder) checkHostAddress(b *hcl.Block, h *Host, addrAttr, ctxAttr *hcl.Attribute) {
	switch {
	case addrAttr != nil && ctxAttr != nil:
		d.errorf(ctxAttr.NameRange.Ptr(), "Conflicting host endpoint",
			"Host %q sets both address and context; keep one.", h.Name)
		return
	case addrAttr == nil && ctxAttr == nil:
		d.errorf(b.DefRange.Ptr(), "Missing host endpoint",
			"Host %q needs address = \"ssh://user@host\", \"tcp://host:2376\" or \"unix:///var/run/docker.sock\", or context = \"NAME\" (a docker context).", h.Name)
		return
	case ctxAttr != nil:
		if h.Context == "" {
			d.errorf(ctxAttr.Expr.Range().Ptr(), "Empty context name", "Give the name of a docker context, as `docker context ls` lists them.")
		}
		// insecure stays allowed: it is how a host accepts a context whose
		// endpoint is plain tcp:// off loopback or skips TLS verification
		// (engine.Dial refuses those contexts without it).
		if h.TLS != nil {
			d.errorf(ctxAttr.NameRange.Ptr(), "Conflicting host settings",
				"Host %q uses a docker context, which carries its own endpoint and TLS settings; remove the tls block.", h.Name)
		}
		return
	}
	if h.Address == "" {
		return // empty, or not a string: reported in decodeHost
	}
	rng := addrAttr.Expr.Range().Ptr()
	if err := checkAddress(h); err != nil {
		d.errorf(rng, "Invalid host address", "Host %q: %s", h.Name, err)
	}
}

func checkAddress(h *Host) error {
	u, err := url.Parse(h.Address)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is not a URL; write ssh://user@host, tcp://host:2376 or unix:///path/to/docker.sock.", h.Address)
	}
	if h.TLS != nil && u.Scheme != "tcp" {
		return fmt.Errorf("a tls block applies only to tcp:// addresses, not %s://.", u.Scheme)
	}
	if h.Insecure && u.Scheme != "tcp" {
		return fmt.Errorf("insecure = true applies only to tcp:// addresses; %s:// is already private. Remove it.", u.Scheme)
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("%q must name an absolute socket path, as in unix:///var/run/docker.sock (three slashes).", h.Address)
		}
	case "ssh":
		if u.Hostname() == "" {
			return fmt.Errorf("%q names no machine; write ssh://user@host or ssh://user@host:2222.", h.Address)
		}
		if err := checkPort(u.Port()); err != nil {
			return err
		}
	case "tcp":
		return checkTCP(h, u)
	default:
		return fmt.Errorf("the scheme %q is not supported; use ssh://, tcp:// (with a tls block) or unix://.", u.Scheme)
	}
	if h.PublicAddress == "" && u.Scheme != "unix" {
		h.PublicAddress = u.Hostname()
	}
	return nil
}

func checkTCP(h *Host, u *url.URL) error {
	if u.Hostname() == "" {
		return fmt.Errorf("%q names no machine; write tcp://host:2376.", h.Address)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%q has a path; a tcp:// address is only host and port.", h.Address)
	}
	if err := checkPort(u.Port()); err != nil {
		return err
	}
	if h.TLS == nil && !h.Insecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("plain tcp:// to %s would send Docker API calls, which give root on that machine, unencrypted and unauthenticated. Add a tls block (ca_file, cert_file, key_file), use ssh://, or set insecure = true if this network is trusted.", u.Hostname())
	}
	if h.PublicAddress == "" {
		h.PublicAddress = u.Hostname()
	}
	return nil
}

func checkPort(p string) error {
	if p == "" {
		return nil
	}
	var n int
	if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
		return fmt.Errorf("port %q is not a number from 1 to 65535.", p)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ReachAddress is where other hosts reach this host's published ports: the
// public_address, or the host part of address; empty for a unix:// or
// context host without public_address.
func (h *Host) ReachAddress() string { return h.PublicAddress }

func (d *decoder) decodeResources(b *hcl.Block, ctx *hcl.EvalContext, scope refScope) *Resources {
	content, diags := b.Body.Content(resourcesSchema)
	d.diags = append(d.diags, diags...)
	if len(content.Attributes) == 0 {
		d.errorf(b.DefRange.Ptr(), "Empty "+b.Type+" block", "Set cpu (cores, such as 0.5) or memory (such as \"512MiB\"), or remove the block.")
		return nil
	}
	r := &Resources{}
	if a, ok := content.Attributes["cpu"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if v, ok := d.convertAttr(a, val, cty.Number, 0); ok {
				if m, err := CPUToMilli(v.AsBigFloat()); err != nil {
					d.errorf(a.Expr.Range().Ptr(), "Invalid CPU amount", "%s.", capitalize(err.Error()))
				} else {
					r.MilliCPU = m
				}
			}
		}
	}
	if a, ok := content.Attributes["memory"]; ok {
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			r.MemoryBytes = d.memoryValue(a, val)
		}
	}
	return r
}

// memoryValue reads a memory size given as a string with units or a number
// of bytes.
func (d *decoder) memoryValue(a *hcl.Attribute, val cty.Value) int64 {
	rng := a.Expr.Range().Ptr()
	var n int64
	if val.Type() == cty.Number && val.IsKnown() && !val.IsNull() && !val.IsMarked() {
		bf := val.AsBigFloat()
		i, acc := bf.Int64()
		if acc != big.Exact {
			d.errorf(rng, "Invalid memory size", "A memory size given as a number is a whole number of bytes; write \"512MiB\" for units.")
			return 0
		}
		n = i
	} else {
		s, ok := d.toString(a, val)
		if !ok {
			return 0
		}
		var err error
		if n, err = ParseMemory(s); err != nil {
			d.errorf(rng, "Invalid memory size", "%s.", capitalize(err.Error()))
			return 0
		}
	}
	if err := CheckMemory(n); err != nil {
		d.errorf(rng, "Invalid memory size", "%s.", capitalize(err.Error()))
		return 0
	}
	return n
}

func (d *decoder) decodeTLS(b *hcl.Block, ctx *hcl.EvalContext, scope refScope) *TLSFiles {
	content, diags := b.Body.Content(tlsSchema)
	d.diags = append(d.diags, diags...)
	t := &TLSFiles{}
	for name, dst := range map[string]*string{"ca_file": &t.CAFile, "cert_file": &t.CertFile, "key_file": &t.KeyFile} {
		a, ok := content.Attributes[name]
		if !ok {
			continue
		}
		if val, _, ok := d.eval(a.Expr, ctx, scope); ok {
			if s, ok := d.toString(a, val); ok {
				if s == "" {
					d.errorf(a.Expr.Range().Ptr(), "Empty file name", "%s must name a PEM file.", name)
					continue
				}
				if !filepath.IsAbs(s) {
					s = filepath.Join(d.dir, s)
				}
				*dst = s
			}
		}
	}
	return t
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

package etcdstate

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dockplan/dockplan/state"
)

// layout is the version of the key layout and manifest this dockplan
// writes and reads; a newer one is refused like a newer state format.
const layout = 1

// encodingGzip says that the chunks, concatenated, are the gzip-compressed
// encoded state.
const encodingGzip = "gzip"

// manifest is the value of <prefix>/state: the state's header, for the
// compare-and-swap without reading the state, and where its data is.
type manifest struct {
	// FormatVersion, Lineage and Serial are the stored state's header.
	FormatVersion int    `json:"format_version"`
	Lineage       string `json:"lineage"`
	Serial        int64  `json:"serial"`
	// Layout is the layout version (layout).
	Layout int `json:"layout"`
	// Encoding is how the chunks encode the state (encodingGzip).
	Encoding string `json:"encoding"`
	// Generation names this save's chunks, <prefix>/chunks/<generation>/;
	// unique per save, so a save recognises its own write.
	Generation string `json:"generation"`
	// Chunks is how many chunk keys there are, numbered from 0.
	Chunks int `json:"chunks"`
	// Size and SHA256 are the length and the hex SHA-256 of the encoded
	// state (decompressed).
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (m *manifest) header() state.Header {
	return state.Header{FormatVersion: m.FormatVersion, Lineage: m.Lineage, Serial: m.Serial}
}

// Keys under the prefix.
func (b *Backend) stateKey() string                 { return b.prefix + "/state" }
func (b *Backend) lockKey() string                  { return b.prefix + "/lock" }
func (b *Backend) chunksPrefix() string             { return b.prefix + "/chunks/" }
func (b *Backend) generationPrefix(g string) string { return b.chunksPrefix() + g + "/" }
func (b *Backend) chunkKey(g string, i int) string {
	return fmt.Sprintf("%s%06d", b.generationPrefix(g), i)
}

// write is one save's data, ready to store.
type write struct {
	manifest manifest
	// value is the manifest as JSON.
	value []byte
	// chunks are the compressed state cut to the backend's chunk size.
	chunks [][]byte
	// uploaded is set once every chunk but the last is stored; the last
	// one goes with the manifest.
	uploaded bool
}

// gzipWriters keeps compressors between saves: each holds about 1 MB of
// tables, which a save after every applier step would otherwise allocate
// anew.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// newWrite compresses and cuts data, the encoded state whose header is h.
func (b *Backend) newWrite(h state.Header, data []byte) (*write, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := buf.Bytes()
	var chunks [][]byte
	for len(compressed) > b.chunkSize {
		chunks = append(chunks, compressed[:b.chunkSize])
		compressed = compressed[b.chunkSize:]
	}
	chunks = append(chunks, compressed)
	sum := sha256.Sum256(data)
	var random [4]byte
	_, _ = rand.Read(random[:])
	m := manifest{
		FormatVersion: h.FormatVersion, Lineage: h.Lineage, Serial: h.Serial,
		Layout: layout, Encoding: encodingGzip,
		Generation: fmt.Sprintf("%016x-%x", h.Serial, random),
		Chunks:     len(chunks), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
	}
	value, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &write{manifest: m, value: value, chunks: chunks}, nil
}

// damaged is a ParseError for a stored state that cannot be read back.
func (b *Backend) damaged(format string, args ...any) error {
	return &state.ParseError{Path: b.where, Err: fmt.Errorf("the stored state is damaged: "+format+
		"; it was changed outside dockplan. Look at the keys under %s/ (etcdctl get --prefix), or remove them if the state is not needed (plan then adopts the running containers by label)", append(args, b.prefix)...)}
}

// parseManifest decodes the value of the state key.
func (b *Backend) parseManifest(value []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, b.damaged("%s is not a dockplan manifest (%v)", b.stateKey(), err)
	}
	if m.Layout > layout {
		return nil, &state.ParseError{Path: b.where, Err: fmt.Errorf("%w: key layout %d, this dockplan reads up to %d; upgrade dockplan (the stored state is left untouched)", state.ErrNewerFormat, m.Layout, layout)}
	}
	if m.Layout < 1 || m.Encoding != encodingGzip || m.Chunks < 1 || m.Generation == "" || strings.Contains(m.Generation, "/") {
		return nil, b.damaged("%s has layout %d, encoding %q, %d chunks, generation %q", b.stateKey(), m.Layout, m.Encoding, m.Chunks, m.Generation)
	}
	return &m, nil
}

// assemble joins, decompresses and checks the chunks m names, picked from
// kvs (every chunk key read at the manifest's revision).
func (b *Backend) assemble(m *manifest, kvs []*mvccpb.KeyValue) ([]byte, error) {
	prefix := b.generationPrefix(m.Generation)
	parts := make([][]byte, m.Chunks)
	for _, kv := range kvs {
		rest, ok := strings.CutPrefix(string(kv.Key), prefix)
		if !ok {
			continue
		}
		if i, err := strconv.Atoi(rest); err == nil && i >= 0 && i < m.Chunks {
			parts[i] = kv.Value
		}
	}
	readers := make([]io.Reader, m.Chunks)
	for i, p := range parts {
		if p == nil {
			return nil, b.damaged("chunk %s is missing", b.chunkKey(m.Generation, i))
		}
		readers[i] = bytes.NewReader(p)
	}
	zr, err := gzip.NewReader(io.MultiReader(readers...))
	if err != nil {
		return nil, b.damaged("its chunks are not gzip data (%v)", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, m.Size+1))
	if err != nil {
		return nil, b.damaged("its chunks do not decompress (%v)", err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, b.damaged("%d bytes with SHA-256 %x, the manifest says %d bytes with %s", len(data), sum, m.Size, m.SHA256)
	}
	return data, nil
}

// stored is what read found.
type stored struct {
	manifest *manifest
	modRev   int64
	data     []byte
}

// read returns the stored state's bytes and manifest, nil when nothing is
// stored. The manifest and the chunks are read in one transaction, at one
// revision, so a save switching the manifest meanwhile cannot mix them.
func (b *Backend) read(ctx context.Context, what string) (*stored, error) {
	var resp *clientv3.TxnResponse
	err := b.do(ctx, what, false, func(ctx context.Context) error {
		var err error
		resp, err = b.client.Txn(ctx).Then(
			clientv3.OpGet(b.stateKey()),
			clientv3.OpGet(b.chunksPrefix(), clientv3.WithPrefix()),
		).Commit()
		return err
	})
	if err != nil {
		return nil, err
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return nil, nil
	}
	m, err := b.parseManifest(kvs[0].Value)
	if err != nil {
		return nil, err
	}
	data, err := b.assemble(m, resp.Responses[1].GetResponseRange().GetKvs())
	if err != nil {
		return nil, err
	}
	b.remember(m, kvs[0].ModRevision)
	return &stored{manifest: m, modRev: kvs[0].ModRevision, data: data}, nil
}

// remember keeps m, stored at modRev, as the guess for the next Save.
func (b *Backend) remember(m *manifest, modRev int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = &seen{header: m.header(), generation: m.Generation, modRev: modRev}
}

// Load reads and checks the stored state; nil, nil when there is none.
func (b *Backend) Load(ctx context.Context) (*state.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := b.read(ctx, "load")
	if err != nil || st == nil {
		return nil, err
	}
	s, err := state.Parse(b.where, st.data)
	return s, b.reword(err)
}

// reword turns the state package's advice for a damaged state file
// ("restore it from <file>.backup") into advice for etcd, which keeps no
// backup: a state that passed the manifest's checksum but does not decode
// was written outside dockplan.
func (b *Backend) reword(err error) error {
	var perr *state.ParseError
	if err == nil || errors.Is(err, state.ErrNewerFormat) || !errors.As(err, &perr) {
		return err
	}
	problem := perr.Err.Error()
	if i := strings.Index(problem, "; restore it from "); i >= 0 {
		problem = problem[:i]
	}
	if strings.HasPrefix(problem, "the file is empty") {
		problem = "it is empty"
	}
	return b.damaged("it does not decode as a dockplan state (%s)", problem)
}

// heads is what a save compares: the stored manifest and the lock key,
// read at one revision, or guessed from what this value saw last.
type heads struct {
	// manifest is the stored manifest, nil when nothing is stored.
	manifest *manifest
	// stateRev is the state key's mod revision, 0 when there is none.
	stateRev int64
	// lock is the lock key, nil when nobody holds the lock.
	lock *mvccpb.KeyValue
	// rev is the revision they were read at.
	rev int64
	// guessed is set when they come from this value's memory: then the
	// transaction's compare is the only check of the lock.
	guessed bool
}

// Save stores s if state.CheckSave allows it over the stored state.
//
// The chunks go under a new generation first; then one transaction puts
// the last chunk and the manifest, and deletes every other generation, if
// the manifest is still the one checked and the lock is still this value's
// (or, when this value holds none, nobody's). A Save without the lock does
// not take it: the transaction's compare on the lock key makes the write
// exactly as exclusive, in one round trip. When someone else holds the
// lock, Save waits like Lock.
func (b *Backend) Save(ctx context.Context, s *state.State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := state.CheckSave(b.where, nil, s); err != nil {
		return err
	}
	data, err := s.Encode()
	if err != nil {
		return fmt.Errorf("cannot encode state %s: %w", b.where, err)
	}
	w, err := b.newWrite(state.Header{FormatVersion: s.FormatVersion, Lineage: s.Lineage, Serial: s.Serial}, data)
	if err != nil {
		return fmt.Errorf("cannot compress state %s: %w", b.where, err)
	}
	what := fmt.Sprintf("save serial %d of", s.Serial)
	h := b.guess(s)
	for {
		next, wait, err := b.attempt(ctx, what, s, w, h)
		switch {
		case err != nil:
			b.dropChunks(w, err)
			return err
		case wait:
			if err := b.waitRelease(ctx, next.lock, next.rev); err != nil {
				b.dropChunks(w, err)
				return err
			}
			h = nil
		case next == nil:
			return nil
		default:
			h = next
		}
	}
}

// guess returns what this value saw last as the heads to compare against,
// when s follows it; nil otherwise.
func (b *Backend) guess(s *state.State) *heads {
	b.mu.Lock()
	defer b.mu.Unlock()
	last := b.last
	if last == nil || last.header.Lineage != s.Lineage || last.header.Serial != s.Serial-1 || last.header.FormatVersion != s.FormatVersion {
		return nil
	}
	m := &manifest{FormatVersion: last.header.FormatVersion, Lineage: last.header.Lineage, Serial: last.header.Serial, Generation: last.generation}
	return &heads{manifest: m, stateRev: last.modRev, guessed: true}
}

// attempt makes one try at saving w over h (nil: read them first). It
// returns nil heads when w is stored; the heads to try again with when the
// transaction's compare failed; those heads and wait set when another
// holder has the lock (their lock and rev say which); or an error.
func (b *Backend) attempt(ctx context.Context, what string, s *state.State, w *write, h *heads) (next *heads, wait bool, err error) {
	b.opMu.RLock()
	defer b.opMu.RUnlock()
	if h == nil {
		if h, err = b.readHeads(ctx, what); err != nil {
			return nil, false, err
		}
	}
	if h.manifest != nil && h.manifest.Generation == w.manifest.Generation {
		// An earlier try that got no answer was stored.
		b.remember(h.manifest, h.stateRev)
		return nil, false, nil
	}
	held := b.heldLock()
	if !h.guessed {
		switch {
		case held != nil && (h.lock == nil || h.lock.CreateRevision != held.rev):
			return nil, false, b.lockLost(held, "nothing was written to "+b.where)
		case held == nil && h.lock != nil:
			return h, true, nil
		}
	}
	stored, err := b.storedHeader(ctx, what, h)
	if err != nil {
		return nil, false, err
	}
	if err := state.CheckSave(b.where, stored, s); err != nil {
		return nil, false, err
	}
	if err := b.upload(ctx, what, w); err != nil {
		return nil, false, err
	}
	lockRev := int64(0) // nobody's
	if held != nil {
		lockRev = held.rev
	}
	return b.commit(ctx, what, w, h.stateRev, lockRev)
}

// commit stores the last chunk and the manifest of w, and deletes every
// other generation, if the state key's mod revision is still stateRev and
// the lock key's create revision lockRev (0: no lock key). It returns nil
// heads when it did, else the current heads to try again with.
func (b *Backend) commit(ctx context.Context, what string, w *write, stateRev, lockRev int64) (*heads, bool, error) {
	g := w.manifest.Generation
	last := len(w.chunks) - 1
	var resp *clientv3.TxnResponse
	err := b.do(ctx, what, true, func(ctx context.Context) error {
		var err error
		resp, err = b.client.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(b.stateKey()), "=", stateRev),
			clientv3.Compare(clientv3.CreateRevision(b.lockKey()), "=", lockRev),
		).Then(
			clientv3.OpPut(b.chunkKey(g, last), string(w.chunks[last])),
			clientv3.OpPut(b.stateKey(), string(w.value)),
			// Every other generation: the previous save's and any left by a
			// writer that died between its chunks and its manifest.
			clientv3.OpDelete(b.chunksPrefix(), clientv3.WithRange(b.generationPrefix(g))),
			clientv3.OpDelete(clientv3.GetPrefixRangeEnd(b.generationPrefix(g)), clientv3.WithRange(clientv3.GetPrefixRangeEnd(b.chunksPrefix()))),
		).Else(
			clientv3.OpGet(b.stateKey()),
			clientv3.OpGet(b.lockKey()),
		).Commit()
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if resp.Succeeded {
		b.remember(&w.manifest, resp.Header.Revision)
		return nil, false, nil
	}
	next, err := b.headsFrom(resp.Header.Revision, resp.Responses[0].GetResponseRange(), resp.Responses[1].GetResponseRange())
	return next, false, err
}

// readHeads reads the manifest and the lock key at one revision.
func (b *Backend) readHeads(ctx context.Context, what string) (*heads, error) {
	var resp *clientv3.TxnResponse
	err := b.do(ctx, what, false, func(ctx context.Context) error {
		var err error
		resp, err = b.client.Txn(ctx).Then(clientv3.OpGet(b.stateKey()), clientv3.OpGet(b.lockKey())).Commit()
		return err
	})
	if err != nil {
		return nil, err
	}
	return b.headsFrom(resp.Header.Revision, resp.Responses[0].GetResponseRange(), resp.Responses[1].GetResponseRange())
}

// headsFrom builds heads from the range responses of the state and the
// lock keys.
func (b *Backend) headsFrom(rev int64, stateRange, lockRange *pb.RangeResponse) (*heads, error) {
	h := &heads{rev: rev}
	if kvs := stateRange.GetKvs(); len(kvs) > 0 {
		m, err := b.parseManifest(kvs[0].Value)
		if err != nil {
			return nil, err
		}
		h.manifest, h.stateRev = m, kvs[0].ModRevision
	}
	if kvs := lockRange.GetKvs(); len(kvs) > 0 {
		h.lock = kvs[0]
	}
	return h, nil
}

// storedHeader returns the header to check a save against: the manifest's,
// or, when that is not usable, the stored state's own (which words the
// exact problem). nil when nothing is stored.
func (b *Backend) storedHeader(ctx context.Context, what string, h *heads) (*state.Header, error) {
	m := h.manifest
	if m == nil {
		return nil, nil
	}
	if m.FormatVersion > state.FormatVersion || (m.FormatVersion >= 1 && m.Lineage != "" && m.Serial >= 0) {
		hdr := m.header()
		return &hdr, nil
	}
	st, err := b.read(ctx, what)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, nil
	}
	hdr, err := state.ParseHeader(b.where, st.data)
	if err != nil {
		return nil, b.reword(err)
	}
	return &hdr, nil
}

// upload stores every chunk of w but the last, once.
func (b *Backend) upload(ctx context.Context, what string, w *write) error {
	if w.uploaded {
		return nil
	}
	for i, chunk := range w.chunks[:len(w.chunks)-1] {
		key := b.chunkKey(w.manifest.Generation, i)
		// Not a change yet: nothing names these chunks until the manifest
		// switches.
		err := b.do(ctx, what, false, func(ctx context.Context) error {
			_, err := b.client.Put(ctx, key, string(chunk))
			return err
		})
		if err != nil {
			return err
		}
	}
	w.uploaded = true
	return nil
}

// dropChunks removes the chunks a failed save uploaded, when it surely
// failed; after a write that got no answer they may be the stored state,
// and the next save removes them anyway.
func (b *Backend) dropChunks(w *write, err error) {
	var unavailable *UnavailableError
	if !w.uploaded || errors.As(err, &unavailable) {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	g := w.manifest.Generation
	// Only while the manifest does not name them.
	resp, gerr := b.client.Get(ctx, b.stateKey())
	if gerr != nil {
		return
	}
	if len(resp.Kvs) > 0 {
		if m, perr := b.parseManifest(resp.Kvs[0].Value); perr != nil || m.Generation == g {
			return
		}
	}
	_, _ = b.client.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(b.stateKey()), "=", modRevOf(resp)),
	).Then(clientv3.OpDelete(b.generationPrefix(g), clientv3.WithPrefix())).Commit()
}

func modRevOf(resp *clientv3.GetResponse) int64 {
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].ModRevision
}

// Remove deletes the stored state (its manifest and chunks) if its header
// is still stored, for a migration that replaces an older copy of the
// same lineage: a Save then writes over nothing, keeping its serial. This
// value must hold the lock, which stays held. Nothing stored is not an
// error; a stored state with another header is left alone and fails.
func (b *Backend) Remove(ctx context.Context, stored state.Header) error {
	held := b.heldLock()
	if held == nil {
		return fmt.Errorf("cannot remove the state %s without holding its lock (a bug in dockplan; nothing was removed)", b.where)
	}
	b.opMu.RLock()
	defer b.opMu.RUnlock()
	const what = "remove the older state of"
	for tries := 0; ; tries++ {
		h, err := b.readHeads(ctx, what)
		switch {
		case err != nil:
			return err
		case h.lock == nil || h.lock.CreateRevision != held.rev:
			return b.lockLost(held, "nothing was removed from "+b.where)
		case h.manifest == nil:
			return nil // removed, perhaps by a try that got no answer
		case h.manifest.header() != stored:
			return fmt.Errorf("the state %s changed while this dockplan held its lock (serial %d, expected %d); nothing was removed", b.where, h.manifest.Serial, stored.Serial)
		case tries > 0:
			return fmt.Errorf("the state %s changed while removing it; nothing was removed, run the command again", b.where)
		}
		var resp *clientv3.TxnResponse
		err = b.do(ctx, what, true, func(ctx context.Context) error {
			resp, err = b.client.Txn(ctx).If(
				clientv3.Compare(clientv3.ModRevision(b.stateKey()), "=", h.stateRev),
				clientv3.Compare(clientv3.CreateRevision(b.lockKey()), "=", held.rev),
			).Then(
				clientv3.OpDelete(b.stateKey()),
				clientv3.OpDelete(b.chunksPrefix(), clientv3.WithPrefix()),
			).Commit()
			return err
		})
		if err != nil {
			return err
		}
		if resp.Succeeded {
			b.mu.Lock()
			b.last = nil
			b.mu.Unlock()
			return nil
		}
	}
}

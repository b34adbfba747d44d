package etcdstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/dockplan/dockplan/state"
)

// lockRecheck is how long a waiter trusts its watch on the lock key before
// it looks again: a watch on a member that lost its leader says nothing.
const lockRecheck = time.Second

// Lock takes the state lock for a whole operation: it creates
// <prefix>/lock holding info, bound to this value's lease, if the key does
// not exist. Otherwise it watches the key until it is deleted (Unlock,
// ForceUnlock, or the holder's lease expired) and tries again, until ctx
// is done; then it fails with *state.LockedError naming the holder.
//
// The lease is this value's for its lifetime (until Close): its TTL is
// Options.LockTTL and the client renews it in the background, so a holder
// that dies or loses contact with etcd frees the lock within the TTL.
func (b *Backend) Lock(ctx context.Context, info state.LockInfo) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	info, value, err := b.holderInfo(info)
	if err != nil {
		return "", err
	}
	var holder *mvccpb.KeyValue // the last holder seen
	sctx, done := b.storeCtx(ctx)
	defer done()
	for leases := 1; ; {
		session, err := b.leaseSession(sctx)
		if err != nil {
			return "", b.lockFailed(ctx, holder, err)
		}
		var resp *clientv3.TxnResponse
		err = b.do(sctx, "take the lock of", true, func(ctx context.Context) error {
			var err error
			resp, err = b.client.Txn(ctx).If(
				clientv3.Compare(clientv3.CreateRevision(b.lockKey()), "=", 0),
			).Then(
				clientv3.OpPut(b.lockKey(), string(value), clientv3.WithLease(session.Lease())),
			).Else(
				clientv3.OpGet(b.lockKey()),
			).Commit()
			return err
		})
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && leases < 3 {
			// The lease expired before the keep-alive noticed: a new one.
			b.dropSession(session)
			leases++
			continue
		}
		if err != nil {
			// A try that got no answer may have created the key; this
			// value's lease would keep it for as long as the value lives.
			go b.abandonLock(value)
			return "", b.lockFailed(ctx, holder, err)
		}
		rev := resp.Header.Revision
		if !resp.Succeeded {
			kvs := resp.Responses[0].GetResponseRange().GetKvs()
			if len(kvs) == 0 {
				continue
			}
			holder = kvs[0]
			if holder.Lease != int64(session.Lease()) || readInfo(holder.Value).ID != info.ID {
				if err := b.waitRelease(ctx, holder, rev); err != nil {
					return "", err
				}
				continue
			}
			rev = holder.CreateRevision // an earlier try that got no answer took it
		}
		b.setHeld(&heldLock{info: info, rev: rev})
		return info.ID, nil
	}
}

// storeCtx returns the context of Lock's requests to etcd. ctx bounds
// the wait for another holder, and a caller that will not wait at all
// (apply's -lock-timeout 0) gives it only a moment, less than a first
// connection, a lease grant and a transaction take: the requests get at
// least the backend's timeout, and end early only when ctx is cancelled.
func (b *Backend) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) >= b.timeout {
		return context.WithCancel(ctx)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	return sctx, func() {
		stop()
		cancel()
	}
}

// holderInfo completes info (an ID, when it was taken, this state) and
// encodes it as the lock key's value.
func (b *Backend) holderInfo(info state.LockInfo) (state.LockInfo, []byte, error) {
	if info.ID == "" {
		info.ID = state.NewLockInfo(info.Operation).ID
	}
	if info.Created.IsZero() {
		info.Created = time.Now().UTC().Round(0)
	}
	info.Path = b.where
	value, err := json.Marshal(info)
	if err != nil {
		return info, nil, fmt.Errorf("cannot encode the lock holder for %s: %w", b.where, err)
	}
	return info, value, nil
}

// lockFailed is the error of a Lock that failed with err: when ctx ended
// while another held the lock, a *state.LockedError naming the holder
// (the last one seen, or the one there now).
func (b *Backend) lockFailed(ctx context.Context, holder *mvccpb.KeyValue, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if holder == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.tryTimeout())
		resp, gerr := b.client.Get(rctx, b.lockKey())
		cancel()
		if gerr != nil || len(resp.Kvs) == 0 {
			return err
		}
		holder = resp.Kvs[0]
	}
	return &state.LockedError{Where: b.where, Holder: readInfo(holder.Value), Err: ctx.Err()}
}

// abandonLock deletes the lock key if it still holds exactly value, the
// holder info of a Lock that failed.
func (b *Backend) abandonLock(value []byte) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	_, _ = b.client.Txn(ctx).If(
		clientv3.Compare(clientv3.Value(b.lockKey()), "=", string(value)),
	).Then(clientv3.OpDelete(b.lockKey())).Commit()
}

// setHeld records a lock just taken. A lock this value still records as
// held was broken from outside (else the new one could not have been
// taken): it is kept as lost, so that its Unlock says so.
func (b *Backend) setHeld(l *heldLock) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held != nil {
		b.lost = b.held
	}
	b.held = l
}

// heldLock returns the lock this value holds, nil when none.
func (b *Backend) heldLock() *heldLock {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// waitRelease waits until the lock key seen at rev changes, or at most
// lockRecheck; when ctx is done first it fails with *state.LockedError
// naming the holder.
func (b *Backend) waitRelease(ctx context.Context, holder *mvccpb.KeyValue, rev int64) error {
	wctx, cancel := context.WithTimeout(ctx, lockRecheck)
	defer cancel()
	events := b.client.Watch(wctx, b.lockKey(), clientv3.WithRev(rev+1))
	select {
	case <-events:
	case <-wctx.Done():
	}
	if err := ctx.Err(); err != nil {
		return &state.LockedError{Where: b.where, Holder: readInfo(holder.Value), Err: err}
	}
	return nil
}

// readInfo decodes a lock key's value; the zero LockInfo when it is not
// holder info.
func readInfo(value []byte) state.LockInfo {
	var info state.LockInfo
	if json.Unmarshal(value, &info) != nil {
		return state.LockInfo{}
	}
	return info
}

// lockLost is ErrLockLost for held, with what happened to the write.
func (b *Backend) lockLost(held *heldLock, outcome string) error {
	why := "Another dockplan may be using the state now; run plan again when it is done"
	if b.sessionExpired() {
		why = fmt.Sprintf("Its lease expired: this dockplan lost contact with etcd for longer than the lock TTL (%s); run plan again", b.ttl)
	}
	return fmt.Errorf("%w (lock %s); %s. %s", state.ErrLockLost, held.info.ID, outcome, why)
}

// Unlock releases the lock lockID held by this value: it deletes the lock
// key if it is still the one this value created. The lease stays for the
// next Lock.
func (b *Backend) Unlock(ctx context.Context, lockID string) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	held, lost := b.held, b.lost
	switch {
	case held != nil && held.info.ID == lockID:
		b.held = nil
	case lost != nil && lost.info.ID == lockID:
		b.lost = nil
		b.mu.Unlock()
		return b.lockLost(lost, "its changes were saved up to the force-unlock")
	default:
		b.mu.Unlock()
		return fmt.Errorf("%w: lock %s is not held by this dockplan for %s; nothing was unlocked", state.ErrNotLocked, lockID, b.where)
	}
	b.mu.Unlock()
	released, tries, err := b.deleteLock(ctx, "release the lock of", held.rev)
	if err != nil {
		b.mu.Lock()
		if b.held == nil {
			b.held = held // still ours as far as we know: Unlock may be retried
		}
		b.mu.Unlock()
		return err
	}
	if !released && tries == 1 {
		return b.lockLost(held, "its changes were saved up to the force-unlock")
	}
	return nil
}

// deleteLock deletes the lock key if its create revision is rev. It
// reports whether it did, and how many tries it took: a try after one
// that got no answer finds the key gone when the first one deleted it.
func (b *Backend) deleteLock(ctx context.Context, what string, rev int64) (bool, int, error) {
	tries := 0
	var resp *clientv3.TxnResponse
	err := b.do(ctx, what, true, func(ctx context.Context) error {
		tries++
		var err error
		resp, err = b.client.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(b.lockKey()), "=", rev),
		).Then(clientv3.OpDelete(b.lockKey())).Commit()
		return err
	})
	if err != nil {
		return false, tries, err
	}
	return resp.Succeeded, tries, nil
}

// ForceUnlock breaks the lock lockID whoever holds it: it deletes the
// lock key when the holder info in it has that exact ID. The holder, if
// alive, finds its lock gone on its next Save or Unlock (ErrLockLost),
// because those compare the key's create revision; its lease is left
// alone, as it may carry a later lock of the same process.
func (b *Backend) ForceUnlock(ctx context.Context, lockID string) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	if held := b.held; held != nil && held.info.ID == lockID {
		b.held = nil
		b.mu.Unlock()
		_, _, err := b.deleteLock(ctx, "force-unlock", held.rev)
		return err
	}
	b.mu.Unlock()
	var resp *clientv3.GetResponse
	err := b.do(ctx, "read the lock of", false, func(ctx context.Context) error {
		var err error
		resp, err = b.client.Get(ctx, b.lockKey())
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%w: %s has no lock; nothing to unlock", state.ErrNotLocked, b.where)
	}
	kv := resp.Kvs[0]
	holder := readInfo(kv.Value)
	switch {
	case holder.ID == "":
		return fmt.Errorf("%w: %s has no lock holder; nothing to unlock", state.ErrNotLocked, b.where)
	case holder.ID != lockID:
		return fmt.Errorf("%w: %s is not the lock on %s, which is %s; force-unlock needs the holder's exact lock ID",
			state.ErrWrongLockID, lockID, b.where, holder)
	}
	deleted, tries, err := b.deleteLock(ctx, "force-unlock", kv.CreateRevision)
	if err != nil {
		return err
	}
	if !deleted && tries == 1 {
		return fmt.Errorf("the lock on %s changed while force-unlocking it; run force-unlock again with the new holder's ID if it is still needed", b.where)
	}
	return nil
}

// leaseSession returns this value's lease session, creating it (a lease
// of the lock TTL, renewed in the background) when there is none or the
// last one ended.
func (b *Backend) leaseSession(ctx context.Context) (*concurrency.Session, error) {
	b.sessionMu.Lock()
	defer b.sessionMu.Unlock()
	b.mu.Lock()
	current, closed := b.session, b.closed
	b.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("the etcd state backend for %s is closed", b.where)
	}
	if current != nil {
		select {
		case <-current.Done():
		default:
			return current, nil
		}
	}
	ttl := int64(math.Ceil(b.ttl.Seconds()))
	var lease *clientv3.LeaseGrantResponse
	// A lease granted without an answer changes nothing: it expires.
	err := b.do(ctx, "create the lock lease of", false, func(ctx context.Context) error {
		var err error
		lease, err = b.client.Grant(ctx, ttl)
		return err
	})
	if err != nil {
		return nil, err
	}
	session, err := concurrency.NewSession(b.client, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(b.ctx))
	if err != nil {
		return nil, b.failed("keep the lock lease alive for", err)
	}
	b.mu.Lock()
	b.session = session
	b.mu.Unlock()
	return session, nil
}

// dropSession forgets session if it is still the current one.
func (b *Backend) dropSession(session *concurrency.Session) {
	session.Orphan()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.session == session {
		b.session = nil
	}
}

// sessionExpired reports whether the lease session ended by itself.
func (b *Backend) sessionExpired() bool {
	b.mu.Lock()
	session := b.session
	b.mu.Unlock()
	if session == nil {
		return false
	}
	select {
	case <-session.Done():
		return true
	default:
		return false
	}
}

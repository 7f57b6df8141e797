package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// Checkpoints are C2SP tlog-checkpoint notes:
//
//	<origin>\n<tree size>\n<base64 root hash>\n
//
// signed with an Ed25519 note key. One key per installation signs every
// log; its private half is sealed under the root key, its public half (the
// note verifier key) is what auditors need to check an export offline.

const (
	metaSigner   = "audit.signer"   // sealed under the root key
	metaVerifier = "audit.verifier" // public note verifier key
	metaInstall  = "audit.install"  // random installation ID in origins
)

// ErrNoCheckpoint means the log has no checkpoint yet.
var ErrNoCheckpoint = errors.New("audit: no checkpoint yet")

// ErrTampered means the stored tree no longer extends the newest signed
// checkpoint: someone changed the log, and nothing more will be signed.
var ErrTampered = errors.New("audit: the stored log does not extend its newest checkpoint")

// Origin names a log in checkpoints.
func Origin(install, logID string) string {
	return "custodia.audit/" + install + "/" + logID
}

// FormatCheckpoint is the checkpoint body.
func FormatCheckpoint(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// ParsedCheckpoint is a checkpoint body.
type ParsedCheckpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// ParseCheckpoint parses a checkpoint body (the note text).
func ParseCheckpoint(text string) (ParsedCheckpoint, error) {
	var c ParsedCheckpoint
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return c, errors.New("audit: checkpoint: want origin, size and root lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return c, errors.New("audit: checkpoint: bad size")
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return c, errors.New("audit: checkpoint: bad root hash")
	}
	c.Origin, c.Size = lines[0], n
	copy(c.Root[:], h)
	return c, nil
}

// Pusher sends each new checkpoint off the box.
type Pusher interface {
	Push(ctx context.Context, c *store.AuditCheckpoint) error
}

// Log is the tamper-evident log service: signed checkpoints, proofs,
// export and pruning.
type Log struct {
	store  store.Store
	root   *keys.Root
	now    func() time.Time
	log    *slog.Logger
	push   []Pusher
	mu     sync.Mutex
	signer note.Signer
	inst   string
}

// NewLog returns the service.
func NewLog(s store.Store, root *keys.Root, now func() time.Time, log *slog.Logger, push ...Pusher) *Log {
	return &Log{store: s, root: root, now: now, log: log, push: push}
}

// ensureSigner loads or creates the signing key; it needs the root key.
func (l *Log) ensureSigner(ctx context.Context) (note.Signer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer != nil {
		return l.signer, nil
	}
	var skey keys.Secret
	err := l.store.Update(ctx, func(tx store.Tx) error {
		var err error
		skey, err = l.root.OpenSealedMeta(ctx, tx, metaSigner)
		if err == nil {
			raw, err := tx.GetMeta(ctx, metaInstall)
			l.inst = string(raw)
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		l.inst = strings.ToLower(rand.Text()[:12])
		sk, vk, err := note.GenerateKey(rand.Reader, "custodia-audit-"+l.inst)
		if err != nil {
			return err
		}
		skey = keys.Secret(sk)
		if err := l.root.InsertSealedMeta(ctx, tx, metaSigner, skey); err != nil {
			return err
		}
		if err := tx.InsertMeta(ctx, metaVerifier, []byte(vk)); err != nil {
			return err
		}
		return tx.InsertMeta(ctx, metaInstall, []byte(l.inst))
	})
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	s, err := note.NewSigner(string(skey))
	skey.Wipe()
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	l.signer = s
	return s, nil
}

// Forget drops the signing key from memory (on seal).
func (l *Log) Forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.signer = nil
}

// PublicKey is the note verifier key that checks every checkpoint.
func (l *Log) PublicKey(ctx context.Context) (string, error) {
	var vk []byte
	err := l.store.View(ctx, func(tx store.Tx) error {
		var err error
		vk, err = tx.GetMeta(ctx, metaVerifier)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		if _, err := l.ensureSigner(ctx); err != nil {
			return "", err
		}
		return l.PublicKey(ctx)
	}
	return string(vk), err
}

// Checkpoint signs and stores a checkpoint of the log's current size, if
// it grew since the last one, and returns the newest checkpoint.
func (l *Log) Checkpoint(ctx context.Context, logID string) (*store.AuditCheckpoint, error) {
	if l.root.Sealed() {
		l.Forget()
		return nil, keys.ErrSealed
	}
	signer, err := l.ensureSigner(ctx)
	if err != nil {
		return nil, err
	}
	var size int64
	var root tlog.Hash
	var latest *store.AuditCheckpoint
	err = l.store.View(ctx, func(tx store.Tx) error {
		var err error
		if size, err = tx.AuditSize(ctx, logID); err != nil {
			return err
		}
		latest, err = tx.LatestAuditCheckpoint(ctx, logID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if size == 0 || (latest != nil && latest.Size >= size) {
			return nil
		}
		if latest != nil {
			// Sign only a tree that extends what was signed before, so a
			// rewritten history is never blessed.
			old, err := TreeHash(ctx, tx, logID, latest.Size)
			if err != nil || !bytes.Equal(old[:], latest.Root) {
				return fmt.Errorf("%w (size %d)", ErrTampered, latest.Size)
			}
		}
		root, err = TreeHash(ctx, tx, logID, size)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint %s: %w", logID, err)
	}
	if size == 0 {
		return nil, ErrNoCheckpoint
	}
	if latest != nil && latest.Size >= size {
		return latest, nil
	}
	msg, err := note.Sign(&note.Note{Text: FormatCheckpoint(Origin(l.inst, logID), size, root)}, signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	c := &store.AuditCheckpoint{LogID: logID, Size: size, Root: root[:], Note: string(msg), CreatedAt: l.now().UTC()}
	err = l.store.Update(ctx, func(tx store.Tx) error { return tx.PutAuditCheckpoint(ctx, c) })
	if errors.Is(err, store.ErrConflict) {
		// Another node signed the same size first; keep theirs.
		return l.Latest(ctx, logID)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range l.push {
		if err := p.Push(ctx, c); err != nil {
			l.log.Warn("audit checkpoint push failed", "log", logID, "size", size, "err", err)
		}
	}
	return c, nil
}

// Latest returns the newest stored checkpoint.
func (l *Log) Latest(ctx context.Context, logID string) (*store.AuditCheckpoint, error) {
	var c *store.AuditCheckpoint
	err := l.store.View(ctx, func(tx store.Tx) error {
		var err error
		c, err = tx.LatestAuditCheckpoint(ctx, logID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoCheckpoint
	}
	return c, err
}

// CheckpointAll checkpoints every log that grew.
func (l *Log) CheckpointAll(ctx context.Context) error {
	var logs []store.AuditLog
	if err := l.store.View(ctx, func(tx store.Tx) error {
		var err error
		logs, err = tx.ListAuditLogs(ctx)
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, lg := range logs {
		if lg.Size > lg.Checkpointed {
			if _, err := l.Checkpoint(ctx, lg.LogID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Run checkpoints grown logs every interval while unsealed, until ctx ends.
func (l *Log) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.root.Sealed() {
			l.Forget()
			continue
		}
		if err := l.CheckpointAll(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("audit checkpoint", "err", err)
		}
	}
}

// FilePusher appends each checkpoint as a JSON line to a file, which an
// operator ships elsewhere (another volume, a log collector).
type FilePusher struct{ Path string }

func (p FilePusher) Push(ctx context.Context, c *store.AuditCheckpoint) error {
	f, err := os.OpenFile(p.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(map[string]any{"log": c.LogID, "size": c.Size, "note": c.Note, "time": c.CreatedAt})
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WebhookPusher POSTs each checkpoint as JSON to a URL.
type WebhookPusher struct {
	URL    string
	Client *http.Client
}

func (p WebhookPusher) Push(ctx context.Context, c *store.AuditCheckpoint) error {
	b, _ := json.Marshal(map[string]any{"log": c.LogID, "size": c.Size, "note": c.Note, "time": c.CreatedAt})
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := p.Client.Do(req)
		if err != nil {
			last = err
			continue
		}
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("webhook answered %s", res.Status)
	}
	return last
}

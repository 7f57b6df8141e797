// Package store defines Custodia's storage interfaces and the records that
// cross them. It owns the shape of persisted data; it knows nothing of HTTP,
// keys or policy. Engines live in subpackages (sqlite, postgres) and every
// engine must pass the conformance suite in storetest.
//
// Nothing in a store is secret in the clear: wrapped keys and sealed records
// arrive here already encrypted, and tokens arrive as hashes.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every engine. Callers test them with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: already exists")
	// ErrSchemaTooNew means the database was migrated by a newer binary.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
)

// Store is a database engine. Every state change runs inside Update, so a
// change and its audit event commit together or not at all.
type Store interface {
	// Update runs fn in a read-write transaction. If fn returns an error the
	// transaction is rolled back and the error returned unchanged. An engine
	// may commit concurrent updates together and may run fn more than once
	// (the first run rolled back), so fn must have no effects outside the
	// transaction beyond setting its caller's variables.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction, possibly on a replica.
	View(ctx context.Context, fn func(Tx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Engine names the engine ("sqlite", "postgres").
	Engine() string
	Close() error
}

// Tx is one transaction. Its parts are split into narrow interfaces so a
// domain package can ask for only what it uses.
type Tx interface {
	MetaTx
	TenantTx
	KeyTx
	RecordTx
	TokenTx
	AuditTx
	JobTx
	IdentityTx
	AccessTx
	VaultTx
	BreakGlassTx
	ShareTx
	CertTx
}

// MetaTx holds small installation-wide values (seal configuration, key
// verifiers). Values are opaque bytes.
type MetaTx interface {
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte) error
	// InsertMeta fails with ErrConflict when key already exists.
	InsertMeta(ctx context.Context, key string, value []byte) error
	// ListMeta returns every key/value whose key starts with prefix.
	ListMeta(ctx context.Context, prefix string) (map[string][]byte, error)
}

// Tenant states.
const (
	TenantActive    = "active"
	TenantSuspended = "suspended"
	// TenantShredded tenants have had every key destroyed.
	TenantShredded = "shredded"
)

// Tenant is one customer company.
type Tenant struct {
	ID        string
	Slug      string
	Name      string
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Page selects a window of a listing ordered by a stable key.
type Page struct {
	// After is the last key of the previous page ("" for the first page).
	After string
	Limit int
}

type TenantTx interface {
	CreateTenant(ctx context.Context, t *Tenant) error
	GetTenant(ctx context.Context, id string) (*Tenant, error)
	GetTenantBySlug(ctx context.Context, slug string) (*Tenant, error)
	ListTenants(ctx context.Context, p Page) ([]Tenant, error)
	SetTenantStatus(ctx context.Context, id, status string, at time.Time) error
}

// Tenant key states.
const (
	KeyActive    = "active"    // used for new writes
	KeyRetired   = "retired"   // opens old records until they are re-wrapped
	KeyDestroyed = "destroyed" // key material erased: records sealed with it are gone
)

// TenantKey is one version of a tenant's data key, wrapped by the root key.
type TenantKey struct {
	TenantID string
	Version  int
	State    string
	// Wrapped is the data key sealed under the root key; nil once destroyed.
	Wrapped []byte
	// RootGeneration is the root-key generation that wrapped this key.
	RootGeneration int
	// HPKEPublic is the public key of the version's HPKE key pair.
	HPKEPublic []byte
	// HPKEPrivate is the HPKE private key sealed under the data key; nil
	// once destroyed.
	HPKEPrivate []byte
	CreatedAt   time.Time
	DestroyedAt time.Time
}

type KeyTx interface {
	InsertTenantKey(ctx context.Context, k *TenantKey) error
	ListTenantKeys(ctx context.Context, tenantID string) ([]TenantKey, error)
	SetTenantKeyState(ctx context.Context, tenantID string, version int, state string) error
	// RewrapTenantKey replaces the wrapped data key (root-key rotation).
	RewrapTenantKey(ctx context.Context, tenantID string, version int, wrapped []byte, rootGeneration int) error
	// DestroyTenantKeys erases the key material of every version of a tenant.
	DestroyTenantKeys(ctx context.Context, tenantID string, at time.Time) error
	// ListLiveTenantKeys returns every key of every tenant whose material
	// still exists, ordered by tenant and version.
	ListLiveTenantKeys(ctx context.Context) ([]TenantKey, error)
}

// Record is a sealed blob that belongs to a tenant. Domain packages (vault,
// devices, ...) keep their secret parts here; the kind names the owner.
type Record struct {
	TenantID   string
	Kind       string
	ID         string
	KeyVersion int
	Ciphertext []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

type RecordTx interface {
	// PutRecord inserts or replaces a record.
	PutRecord(ctx context.Context, r *Record) error
	// InsertRecord inserts r unless a record with its tenant, kind and ID
	// exists (then it changes nothing), and reports whether it inserted.
	// A concurrent inserter waits for the first to finish, so exactly one
	// record wins.
	InsertRecord(ctx context.Context, r *Record) (bool, error)
	GetRecord(ctx context.Context, tenantID, kind, id string) (*Record, error)
	DeleteRecord(ctx context.Context, tenantID, kind, id string) error
	// ListRecordsBelowVersion returns up to limit records of a tenant sealed
	// with a key version lower than version, for re-wrapping.
	ListRecordsBelowVersion(ctx context.Context, tenantID string, version, limit int) ([]Record, error)
	// CountRecordsByVersion counts a tenant's records per key version.
	CountRecordsByVersion(ctx context.Context, tenantID string) (map[int]int64, error)
	// UpdateRecordCiphertext replaces a record's sealed body only if it is
	// still at fromVersion, so a concurrent write is never overwritten.
	UpdateRecordCiphertext(ctx context.Context, r *Record, fromVersion int) (bool, error)
}

// OperatorToken authenticates an operator. Only a hash of the token is
// stored; the token itself is shown once.
type OperatorToken struct {
	ID         string
	Name       string
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
}

type TokenTx interface {
	InsertOperatorToken(ctx context.Context, t *OperatorToken) error
	GetOperatorTokenByHash(ctx context.Context, hash []byte) (*OperatorToken, error)
	ListOperatorTokens(ctx context.Context) ([]OperatorToken, error)
	RevokeOperatorToken(ctx context.Context, id string, at time.Time) error
}

// OperatorLog is the audit log ID of operator actions that belong to no
// tenant.
const OperatorLog = "operator"

// AuditEvent is one entry of an audit log. It never holds a secret value,
// and people appear only by stable pseudonymous IDs.
type AuditEvent struct {
	// LogID is the tenant ID, or OperatorLog.
	LogID string
	// Seq is the position in the log, from 0, assigned by AppendAudit.
	Seq       int64
	Time      time.Time
	ActorType string
	ActorID   string
	Action    string
	Target    string
	Result    string
	SourceIP  string
	UserAgent string
	RequestID string
	// Details is a JSON object with non-secret facts about the event.
	Details []byte
	// Pruned entries have had their body erased after retention; only
	// LogID, Seq and their leaf hash remain.
	Pruned bool
}

// AuditCheckpoint is a signed statement of a log's size and tree root.
type AuditCheckpoint struct {
	LogID     string
	Size      int64
	Root      []byte
	Note      string // the signed note (C2SP tlog-checkpoint)
	CreatedAt time.Time
}

// AuditLog is one log and its size.
type AuditLog struct {
	LogID string
	Size  int64
	// Checkpointed is the size of its newest checkpoint (0 if none).
	Checkpointed int64
}

// AuditFilter selects audit events of one log.
type AuditFilter struct {
	LogID    string
	AfterSeq int64 // exclusive; -1 for the start
	Action   string
	ActorID  string
	Target   string
	Since    time.Time
	Until    time.Time
	Limit    int
}

type AuditTx interface {
	// AppendAudit stores e in the same transaction and numbers it: it sets
	// e.Seq and then calls then(e) (when then is not nil), at once or, for
	// an engine that numbers entries at commit (several writers), before
	// the transaction commits, in append order. then adds the entry to
	// the log's hash tree; it may read and put the log's tree hashes and
	// nothing else, and its error fails the transaction.
	AppendAudit(ctx context.Context, e *AuditEvent, then func(*AuditEvent) error) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// AuditSize is the number of entries in a log.
	AuditSize(ctx context.Context, logID string) (int64, error)
	// ReadAuditHashes returns the stored tree hashes at the given indexes,
	// in order; a missing index is ErrNotFound.
	ReadAuditHashes(ctx context.Context, logID string, idx []int64) ([][]byte, error)
	// PutAuditHashes stores hashes at consecutive indexes from start.
	PutAuditHashes(ctx context.Context, logID string, start int64, hashes [][]byte) error
	PutAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// LatestAuditCheckpoint is ErrNotFound when the log has none.
	LatestAuditCheckpoint(ctx context.Context, logID string) (*AuditCheckpoint, error)
	// ListAuditCheckpoints returns checkpoints with size > afterSize, oldest
	// first.
	ListAuditCheckpoints(ctx context.Context, logID string, afterSize int64, limit int) ([]AuditCheckpoint, error)
	// ListAuditLogs returns every log with its size and newest checkpoint.
	ListAuditLogs(ctx context.Context) ([]AuditLog, error)
	// PruneAudit erases the bodies of a log's oldest entries, up to the first
	// entry at or after before, keeping their sequence numbers, times and
	// leaf hashes. Pruned entries are always a prefix of the log. It returns
	// how many it pruned.
	PruneAudit(ctx context.Context, logID string, before time.Time) (int64, error)
}

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job tracks a background task whose progress an operator can watch.
type Job struct {
	ID        string
	Kind      string
	TenantID  string
	State     string
	Total     int64
	Done      int64
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

type JobTx interface {
	InsertJob(ctx context.Context, j *Job) error
	UpdateJob(ctx context.Context, j *Job) error
	GetJob(ctx context.Context, id string) (*Job, error)
	// ListJobs returns the newest jobs first, optionally of one tenant.
	ListJobs(ctx context.Context, tenantID string, limit int) ([]Job, error)
}

type appendingKey struct{}

// Appending marks ctx's Updates as appends alone (a robot's lease and its
// audit entry): short transactions that engines with several writers
// gather into shared commits rather than spread across writers.
func Appending(ctx context.Context) context.Context {
	return context.WithValue(ctx, appendingKey{}, true)
}

// IsAppending reports whether ctx was marked by Appending.
func IsAppending(ctx context.Context) bool {
	v, _ := ctx.Value(appendingKey{}).(bool)
	return v
}

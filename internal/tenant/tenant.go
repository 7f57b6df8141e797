// Package tenant manages tenants (the customer companies) and their key
// lifecycle: creation with a first key version, suspension, key rotation
// with a watched background re-wrap, and crypto-shredding.
//
// It must never hold a tenant's plaintext beyond one record at a time during
// a re-wrap.
package tenant

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// JobRewrap is the job kind of a re-wrap after key rotation.
const JobRewrap = "keys.rewrap"

const rewrapBatch = 200

// Service manages tenants.
type Service struct {
	store   store.Store
	keyring *keys.Keyring
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	bg      context.Context
	running map[string]bool
	wg      sync.WaitGroup

	// byRef keeps Get's answers (every tenant route resolves its tenant)
	// while the store's change stamp holds (store.ReadCache).
	byRef *store.ReadCache[string, store.Tenant]
}

// New returns a tenant service. Background jobs run under ctx and stop when
// it is cancelled; Wait waits for them.
func New(ctx context.Context, s store.Store, kr *keys.Keyring, now func() time.Time, log *slog.Logger) *Service {
	return &Service{store: s, keyring: kr, now: now, log: log, bg: ctx, running: map[string]bool{},
		byRef: store.NewAccessCache[string, store.Tenant](s, 4<<20)}
}

// Wait blocks until background jobs have stopped.
func (s *Service) Wait() { s.wg.Wait() }

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// CreateInput is a new tenant.
type CreateInput struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

func (in *CreateInput) Validate() error {
	in.Slug = strings.TrimSpace(in.Slug)
	in.Name = strings.TrimSpace(in.Name)
	if !slugRE.MatchString(in.Slug) {
		return fault.New(fault.Invalid, "invalid_slug", "slug must be 1 to 63 lowercase letters, digits or inner hyphens")
	}
	if in.Name == "" || len(in.Name) > 200 {
		return fault.New(fault.Invalid, "invalid_name", "name must be 1 to 200 characters")
	}
	if strings.ContainsFunc(in.Name, unicode.IsControl) {
		return fault.New(fault.Invalid, "invalid_name", "name may not contain control characters")
	}
	return nil
}

// Create makes a tenant with its first key version.
func (s *Service) Create(ctx context.Context, in CreateInput) (*store.Tenant, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	t := &store.Tenant{ID: store.NewID("tnt_"), Slug: in.Slug, Name: in.Name, Status: store.TenantActive, CreatedAt: now, UpdatedAt: now}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateTenant(ctx, t); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fault.New(fault.Conflict, "slug_taken", "a tenant with slug %q already exists", in.Slug)
			}
			return err
		}
		if err := s.keyring.CreateTenantKeys(ctx, tx, t.ID); err != nil {
			return err
		}
		details := map[string]any{"slug": t.Slug, "key_version": 1}
		if err := audit.Append(ctx, tx, now, audit.Entry{Log: store.OperatorLog, Action: "tenant.create", Target: t.ID, Details: details}); err != nil {
			return err
		}
		return audit.Append(ctx, tx, now, audit.Entry{Log: t.ID, Action: "tenant.create", Target: t.ID, Details: details})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Get finds a tenant by ID or slug.
func (s *Service) Get(ctx context.Context, ref string) (*store.Tenant, error) {
	if t, ok := s.byRef.Get(ctx, ref); ok {
		return &t, nil
	}
	stamp, cacheable := s.byRef.Stamp()
	var t *store.Tenant
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		t, err = s.get(ctx, tx, ref)
		return err
	})
	if err == nil && cacheable {
		s.byRef.Put(ref, *t, stamp, 256+len(ref))
	}
	return t, err
}

func (s *Service) get(ctx context.Context, tx store.TenantTx, ref string) (*store.Tenant, error) {
	var t *store.Tenant
	var err error
	if strings.HasPrefix(ref, "tnt_") {
		t, err = tx.GetTenant(ctx, ref)
	} else {
		t, err = tx.GetTenantBySlug(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "tenant_not_found", "no tenant %q", ref)
	}
	return t, err
}

// List returns tenants ordered by ID, after the given ID.
func (s *Service) List(ctx context.Context, after string, limit int) ([]store.Tenant, error) {
	var out []store.Tenant
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListTenants(ctx, store.Page{After: after, Limit: limit})
		return err
	})
	return out, err
}

// SetStatus suspends or resumes a tenant.
func (s *Service) SetStatus(ctx context.Context, ref, status, reason string) (*store.Tenant, error) {
	if status != store.TenantActive && status != store.TenantSuspended {
		return nil, fault.New(fault.Invalid, "invalid_status", "status must be active or suspended")
	}
	if len(reason) > 500 {
		return nil, fault.New(fault.Invalid, "invalid_reason", "reason may be at most 500 characters")
	}
	var t *store.Tenant
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		if t, err = s.get(ctx, tx, ref); err != nil {
			return err
		}
		if t.Status == store.TenantShredded {
			return fault.New(fault.Conflict, "tenant_shredded", "tenant %s was shredded", t.ID)
		}
		if t.Status == status {
			return nil
		}
		now := s.now().UTC()
		if err := tx.SetTenantStatus(ctx, t.ID, status, now); err != nil {
			return err
		}
		action := map[string]string{store.TenantActive: "tenant.resume", store.TenantSuspended: "tenant.suspend"}[status]
		e := audit.Entry{Action: action, Target: t.ID, Details: map[string]any{"reason": reason}}
		for _, log := range []string{store.OperatorLog, t.ID} {
			e.Log = log
			if err := audit.Append(ctx, tx, now, e); err != nil {
				return err
			}
		}
		t.Status, t.UpdatedAt = status, now
		return nil
	})
	return t, err
}

// Keys lists a tenant's key versions with their record counts.
func (s *Service) Keys(ctx context.Context, ref string) ([]keys.KeyInfo, error) {
	var out []keys.KeyInfo
	err := s.store.View(ctx, func(tx store.Tx) error {
		t, err := s.get(ctx, tx, ref)
		if err != nil {
			return err
		}
		out, err = s.keyring.Versions(ctx, tx, t.ID)
		return err
	})
	return out, err
}

// PublicKey returns the tenant's active HPKE public key for sealed
// submissions.
func (s *Service) PublicKey(ctx context.Context, ref string) (*store.Tenant, int, []byte, error) {
	var t *store.Tenant
	var v int
	var pub []byte
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		if t, err = s.get(ctx, tx, ref); err != nil {
			return err
		}
		if t.Status == store.TenantShredded {
			return fault.New(fault.Conflict, "tenant_shredded", "tenant %s was shredded", t.ID)
		}
		v, pub, err = s.keyring.PublicKey(ctx, tx, t.ID)
		return err
	})
	return t, v, pub, err
}

// RotateKey makes a new key version for new writes and starts a background
// job that re-wraps older records; the job's progress can be watched.
func (s *Service) RotateKey(ctx context.Context, ref string) (int, *store.Job, error) {
	var version int
	var job *store.Job
	err := s.store.Update(ctx, func(tx store.Tx) error {
		t, err := s.get(ctx, tx, ref)
		if err != nil {
			return err
		}
		if t.Status == store.TenantShredded {
			return fault.New(fault.Conflict, "tenant_shredded", "tenant %s was shredded", t.ID)
		}
		if version, err = s.keyring.Rotate(ctx, tx, t.ID); err != nil {
			return err
		}
		counts, err := tx.CountRecordsByVersion(ctx, t.ID)
		if err != nil {
			return err
		}
		var total int64
		for v, n := range counts {
			if v < version {
				total += n
			}
		}
		now := s.now().UTC()
		job = &store.Job{ID: "job_" + strings.ToLower(rand.Text()[:16]), Kind: JobRewrap, TenantID: t.ID,
			State: store.JobRunning, Total: total, CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertJob(ctx, job); err != nil {
			return err
		}
		e := audit.Entry{Action: "tenant.key.rotate", Target: t.ID, Details: map[string]any{"version": version, "job": job.ID, "records_to_rewrap": total}}
		for _, log := range []string{store.OperatorLog, t.ID} {
			e.Log = log
			if err := audit.Append(ctx, tx, now, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	s.keyring.Forget(job.TenantID)
	s.startRewrap(job.ID, job.TenantID)
	return version, job, nil
}

func (s *Service) startRewrap(jobID, tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[jobID] {
		return
	}
	s.running[jobID] = true
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.running, jobID)
			s.mu.Unlock()
		}()
		if err := s.RunRewrap(s.bg, jobID, tenantID); err != nil && s.bg.Err() == nil {
			s.log.Error("key re-wrap failed", "job", jobID, "tenant", tenantID, "err", err)
		}
	})
}

// RunRewrap re-wraps a tenant's records batch by batch, recording progress
// after each batch. It is safe to run again after a crash: each batch only
// moves records still below the active version.
func (s *Service) RunRewrap(ctx context.Context, jobID, tenantID string) error {
	for {
		n, err := s.keyring.Rewrap(ctx, s.store, tenantID, rewrapBatch)
		if err != nil {
			if ctx.Err() != nil {
				return err // shutting down; resumed after the next unseal
			}
			return s.finishJob(context.WithoutCancel(ctx), jobID, err)
		}
		if n == 0 {
			return s.finishJob(ctx, jobID, nil)
		}
		err = s.store.Update(ctx, func(tx store.Tx) error {
			j, err := tx.GetJob(ctx, jobID)
			if err != nil {
				return err
			}
			j.Done += int64(n)
			j.Total = max(j.Total, j.Done)
			j.UpdatedAt = s.now().UTC()
			return tx.UpdateJob(ctx, j)
		})
		if err != nil {
			return err
		}
	}
}

func (s *Service) finishJob(ctx context.Context, jobID string, cause error) error {
	err := s.store.Update(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, jobID)
		if err != nil {
			return err
		}
		j.State, j.UpdatedAt = store.JobDone, s.now().UTC()
		result := audit.ResultOK
		if cause != nil {
			// The cause may be internal; the job shows a stable summary and
			// the log line carries the detail.
			j.State, j.Error, result = store.JobFailed, "re-wrap failed; see server log", audit.ResultFailed
		}
		if err := tx.UpdateJob(ctx, j); err != nil {
			return err
		}
		return audit.Append(ctx, tx, j.UpdatedAt, audit.Entry{Log: j.TenantID, Action: "tenant.key.rewrap", Target: j.TenantID,
			Result: result, Details: map[string]any{"job": j.ID, "records": j.Done}})
	})
	if cause != nil {
		return errors.Join(cause, err)
	}
	return err
}

// ResumeJobs restarts re-wraps left running by a stop or crash.
func (s *Service) ResumeJobs(ctx context.Context) error {
	var jobs []store.Job
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		jobs, err = tx.ListJobs(ctx, "", 1000)
		return err
	})
	if err != nil {
		return fmt.Errorf("tenant: list jobs: %w", err)
	}
	for _, j := range jobs {
		if j.Kind == JobRewrap && j.State == store.JobRunning {
			s.startRewrap(j.ID, j.TenantID)
		}
	}
	return nil
}

// Job returns one job.
func (s *Service) Job(ctx context.Context, id string) (*store.Job, error) {
	var j *store.Job
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		j, err = tx.GetJob(ctx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "job_not_found", "no job %q", id)
	}
	return j, err
}

// Jobs lists recent jobs, optionally of one tenant.
func (s *Service) Jobs(ctx context.Context, tenantID string, limit int) ([]store.Job, error) {
	var out []store.Job
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListJobs(ctx, tenantID, limit)
		return err
	})
	return out, err
}

// Shred destroys every key of the tenant: everything sealed for it becomes
// unreadable for good, including in backups. confirm must repeat the slug.
func (s *Service) Shred(ctx context.Context, ref, confirm string) (*store.Tenant, error) {
	var t *store.Tenant
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		if t, err = s.get(ctx, tx, ref); err != nil {
			return err
		}
		if confirm != t.Slug {
			return fault.New(fault.Invalid, "confirmation_mismatch", "shredding is irreversible: confirm must repeat the tenant's slug")
		}
		if t.Status == store.TenantShredded {
			return fault.New(fault.Conflict, "tenant_shredded", "tenant %s was already shredded", t.ID)
		}
		now := s.now().UTC()
		if err := s.keyring.Shred(ctx, tx, t.ID); err != nil {
			return err
		}
		if err := tx.SetTenantStatus(ctx, t.ID, store.TenantShredded, now); err != nil {
			return err
		}
		e := audit.Entry{Action: "tenant.shred", Target: t.ID, Details: map[string]any{"slug": t.Slug}}
		for _, log := range []string{store.OperatorLog, t.ID} {
			e.Log = log
			if err := audit.Append(ctx, tx, now, e); err != nil {
				return err
			}
		}
		t.Status, t.UpdatedAt = store.TenantShredded, now
		return nil
	})
	if err == nil {
		s.keyring.Forget(t.ID)
	}
	return t, err
}

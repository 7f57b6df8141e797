package vault

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
)

// This file holds what a key/value client (the Vault-compatible /v1 API)
// needs beyond the native operations: per-version delete, undelete and
// destroy, version metadata, settings, and listing by path segment. The
// same per-credential permissions apply.

// Metadata is a credential's version history with its settings, as a
// key/value client sees it.
type Metadata struct {
	Credential     Credential
	CASRequired    bool
	OldestVersion  int
	CurrentVersion int
	Versions       []Version
}

// Metadata returns a credential's settings and every kept version.
func (s *Service) Metadata(ctx context.Context, tenantID, ref string) (*Metadata, error) {
	var out Metadata
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := s.find(ctx, tx, tenantID, ref, authz.CredentialsRead)
		if err != nil {
			return err
		}
		vs, err := tx.ListCredentialVersions(ctx, tenantID, c.ID)
		if err != nil {
			return err
		}
		var cur []string
		for _, v := range vs {
			out.Versions = append(out.Versions, Version{Version: v.Version, Fields: v.Fields, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt,
				DeletedAt: v.DeletedAt, DestroyedAt: v.DestroyedAt, Current: v.Version == c.CurrentVersion})
			if v.Version == c.CurrentVersion && v.DeletedAt.IsZero() && v.DestroyedAt.IsZero() {
				cur = v.Fields
			}
		}
		if len(vs) > 0 {
			out.OldestVersion = vs[0].Version
		}
		out.Credential, out.CASRequired, out.CurrentVersion = view(c, cur), c.CASRequired, c.CurrentVersion
		return nil
	})
	if err != nil {
		return nil, s.fail(ctx, "metadata", err)
	}
	return &out, nil
}

// GoneVersion is a deleted or destroyed version as a key/value read
// reports it, instead of its secret.
type GoneVersion struct {
	Version
	// Labels are the credential's (Vault's custom_metadata).
	Labels map[string]string
}

// GoneVersion returns the metadata of a version (0: the current one) that
// a read found deleted or destroyed: Vault's KV v2 answers such a read with
// it, so that a client tells a deleted secret from one that never was.
// Whoever may read, fetch or reveal the credential gets it; anyone else is
// told it does not exist. It is nil when the version is live or does not
// exist (the read raced an undelete, or asked for no such version), and
// the read's own answer stands.
//
// The read that found the version gone may have been served from a cache
// only provisionally current (store.Confirm): it is confirmed first, and
// store.ErrStale returned if it had gone stale, so the read runs again.
func (s *Service) GoneVersion(ctx context.Context, tenantID, ref string, version int) (*GoneVersion, error) {
	if err := store.ConfirmReads(ctx, s.store); err != nil {
		return nil, err
	}
	var out *GoneVersion
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := Lookup(ctx, tx, tenantID, ref)
		if err != nil {
			return err
		}
		if !s.may(ctx, authz.CredentialsRead, tenantID, c) && !s.may(ctx, authz.CredentialsFetch, tenantID, c) &&
			!s.may(ctx, authz.CredentialsReveal, tenantID, c) {
			return errNotFound(c.Name)
		}
		if version == 0 {
			version = c.CurrentVersion
		}
		v, err := tx.GetCredentialVersion(ctx, tenantID, c.ID, version)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil || v.DeletedAt.IsZero() && v.DestroyedAt.IsZero() {
			return err
		}
		out = &GoneVersion{Version: Version{Version: v.Version, Fields: v.Fields, CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt,
			DeletedAt: v.DeletedAt, DestroyedAt: v.DestroyedAt, Current: v.Version == c.CurrentVersion}, Labels: maps.Clone(c.Labels)}
		return nil
	})
	if err != nil {
		return nil, wrapErr("gone version", err)
	}
	return out, nil
}

// Settings change how a credential keeps its versions; nil leaves one as
// it is.
type Settings struct {
	MaxVersions *int
	CASRequired *bool
	// Labels replace the credential's labels (Vault's custom_metadata).
	Labels map[string]string
}

// Configure changes a credential's settings (credentials.write). Lowering
// MaxVersions prunes the oldest versions at once.
func (s *Service) Configure(ctx context.Context, tenantID, ref string, in Settings) error {
	if in.MaxVersions != nil && (*in.MaxVersions < 0 || *in.MaxVersions > MaxVersionsLimit) {
		return invalid("invalid_max_versions", "max_versions must be 0 (the default, %d) to %d", DefaultMaxVersions, MaxVersionsLimit)
	}
	if err := checkLabels(in.Labels); err != nil {
		return err
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		// A name that holds nothing is answered as the write would be;
		// one that holds a credential the caller may neither read nor
		// write is answered the same (need says not found).
		c, err := Lookup(ctx, tx, tenantID, ref)
		if fe, ok := fault.As(err); ok && fe.Code == "not_found" {
			return s.noSettingsWithoutSecret(ctx, tenantID, ref)
		}
		if err != nil {
			return err
		}
		if _, err := s.need(ctx, authz.CredentialsWrite, tenantID, c); err != nil {
			return err
		}
		details := map[string]any{"name": c.Name}
		if in.MaxVersions != nil {
			keep := *in.MaxVersions
			if keep == 0 {
				keep = DefaultMaxVersions
			}
			// Keeping fewer versions erases the older ones for good.
			if keep < c.MaxVersions {
				if err := s.mayErase(ctx, tenantID, c); err != nil {
					return err
				}
			}
			c.MaxVersions = keep
			details["max_versions"] = c.MaxVersions
		}
		if in.CASRequired != nil {
			c.CASRequired = *in.CASRequired
			details["cas_required"] = c.CASRequired
		}
		if in.Labels != nil {
			c.Labels = maps.Clone(in.Labels)
			details["labels"] = slices.Sorted(maps.Keys(in.Labels))
		}
		c.UpdatedAt = s.now().UTC()
		if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		if err := s.prune(ctx, tx, c, details); err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "credential.configure", c.ID, details)
	})
	return s.fail(ctx, "configure", err)
}

// noSettingsWithoutSecret answers settings given for a name that holds no
// credential. Vault's KV v2 keeps them for a path with no version yet;
// Custodia does not: a credential is created with its secret (Put refuses
// a new one without), so that lists, health and offboarding reports never
// show a credential that holds nothing. Whoever could not write the
// credential is refused as their write would be; anyone else is told to
// write the secret first.
func (s *Service) noSettingsWithoutSecret(ctx context.Context, tenantID, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	would := &store.Credential{TenantID: tenantID, Name: name}
	would.Group, _, _ = strings.Cut(name, "/")
	if _, err := s.need(ctx, authz.CredentialsWrite, tenantID, would); err != nil {
		return err
	}
	return invalid("write_data_first", "no secret at %q yet: Custodia keeps a path's settings with its credential, "+
		"so write its data first (vault kv put, with -cas=0 to be sure it is new), then its metadata", name)
}

// checkLabels holds labels to Vault's custom_metadata limits, and each key
// and value to one line without control characters (oneLine), as Vault
// refuses unprintable ones: labels are shown in lists, on terminals and in
// the console like the other metadata (see checkMetadata).
func checkLabels(l map[string]string) error {
	if len(l) > 64 {
		return invalid("invalid_labels", "at most 64 labels")
	}
	for k, v := range l {
		if k == "" || len(k) > 128 || len(v) > 512 {
			return invalid("invalid_labels", "label keys must be 1 to 128 characters and values at most 512")
		}
		if !oneLine(k) || !oneLine(v) {
			return invalid("invalid_labels", "label keys and values must be one line each, without control characters")
		}
	}
	return nil
}

// Version operations.
const (
	// SoftDelete hides versions; they can be undeleted.
	SoftDelete = "delete"
	Undelete   = "undelete"
	// Destroy erases versions' secrets for good; their metadata stays.
	Destroy = "destroy"
)

// ChangeVersions deletes, undeletes or destroys versions of a credential
// (credentials.write). No versions means the current one. Versions that do
// not exist are ignored, as Vault does.
func (s *Service) ChangeVersions(ctx context.Context, tenantID, ref, op string, versions []int) error {
	if !slices.Contains([]string{SoftDelete, Undelete, Destroy}, op) {
		return invalid("invalid_operation", "unknown version operation %q", op)
	}
	if len(versions) > MaxVersionsLimit {
		return invalid("invalid_versions", "at most %d versions at once", MaxVersionsLimit)
	}
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var c *store.Credential
		var err error
		if op == Destroy {
			c, err = s.findToErase(ctx, tx, tenantID, ref)
		} else {
			c, err = s.find(ctx, tx, tenantID, ref, authz.CredentialsWrite)
		}
		if err != nil {
			return err
		}
		vs := versions
		if len(vs) == 0 {
			vs = []int{c.CurrentVersion}
		}
		now := s.now().UTC()
		var changed []int
		for _, n := range vs {
			v, err := tx.GetCredentialVersion(ctx, tenantID, c.ID, n)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !v.DestroyedAt.IsZero() {
				continue
			}
			switch op {
			case SoftDelete:
				if !v.DeletedAt.IsZero() {
					continue
				}
				v.DeletedAt = now
			case Undelete:
				if v.DeletedAt.IsZero() {
					continue
				}
				v.DeletedAt = time.Time{}
			case Destroy:
				// Nothing derived from the password outlives it: its keyed
				// fingerprint (an equality test against any guess, for
				// whoever holds the tenant's MAC key), strength and
				// breached flag go with the sealed record. Pruning and
				// deleting remove the version row itself.
				v.DestroyedAt = now
				v.Fingerprint, v.Strength, v.Breached = nil, -1, false
				if err := tx.DeleteRecord(ctx, tenantID, store.RecordCredential, store.CredentialRecordID(c.ID, n)); err != nil &&
					!errors.Is(err, store.ErrNotFound) {
					return err
				}
				if err := destroyedCertificate(ctx, tx, c, n); err != nil {
					return err
				}
			}
			if err := tx.UpdateCredentialVersion(ctx, v); err != nil {
				return err
			}
			changed = append(changed, n)
		}
		if len(changed) == 0 {
			return nil
		}
		c.UpdatedAt = now
		if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "credential."+op+"_versions", c.ID, map[string]any{"name": c.Name, "versions": changed})
	})
	return s.fail(ctx, op+" versions", err)
}

// Keys lists the next path segment of the credentials under prefix that
// the caller may read, as Vault's LIST does: "santander" for a credential
// named prefix+"santander", "santander/" for any deeper one. prefix is
// empty or ends in "/".
func (s *Service) Keys(ctx context.Context, tenantID, prefix string) ([]string, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var out []string
	seen := map[string]bool{}
	after := ""
	for {
		page, err := s.List(ctx, tenantID, prefix, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			rest := strings.TrimPrefix(c.Name, prefix)
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rest = rest[:i+1]
			}
			if !seen[rest] {
				seen[rest] = true
				out = append(out, rest)
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Name
	}
	slices.Sort(out)
	return out, nil
}

package authz

import (
	"sync"
	"time"
)

// GrantRef is a grant as the decision sees it.
type GrantRef struct {
	ID        string
	Perm      Permission
	Resource  Resource
	ExpiresAt time.Time
}

// GrantSet is one subject's grants, indexed by permission and resource so
// a check costs a few map lookups however many grants the tenant has. A nil
// set allows nothing.
type GrantSet struct {
	by map[grantKey][]GrantRef
}

type grantKey struct {
	perm    Permission
	resType string
	resID   string
}

// NewGrantSet indexes refs.
func NewGrantSet(refs []GrantRef) *GrantSet {
	s := &GrantSet{by: make(map[grantKey][]GrantRef, len(refs))}
	for _, r := range refs {
		k := grantKey{r.Perm, r.Resource.Type, r.Resource.ID}
		s.by[k] = append(s.by[k], r)
	}
	return s
}

// Len is the number of grants in the set.
func (s *GrantSet) Len() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, v := range s.by {
		n += len(v)
	}
	return n
}

// Allows returns the ID of a grant in s that gives perm on res at now, or
// "". A grant is refused from the instant it expires, whether or not a
// sweeper has retired it yet. A grant on the tenant covers every resource
// of it; a grant on a group covers the group's credentials.
func (s *GrantSet) Allows(perm Permission, res Resource, now time.Time) string {
	if s == nil {
		return ""
	}
	try := func(k grantKey) string {
		for _, g := range s.by[k] {
			if now.Before(g.ExpiresAt) {
				return g.ID
			}
		}
		return ""
	}
	if res.Type == ResourceTenant {
		return try(grantKey{perm, ResourceTenant, res.ID})
	}
	if id := try(grantKey{perm, res.Type, res.ID}); id != "" {
		return id
	}
	if res.Group != "" {
		if id := try(grantKey{perm, ResourceGroup, res.Group}); id != "" {
			return id
		}
	}
	return ""
}

// Holds reports whether s has a live grant of perm on any resource: a
// grant on one credential or group is enough to carry perm as a token's
// scope, which only bounds what the token may do (each use is still
// judged on its resource).
func (s *GrantSet) Holds(perm Permission, now time.Time) bool {
	if s == nil {
		return false
	}
	for k, refs := range s.by {
		if k.perm != perm {
			continue
		}
		for _, g := range refs {
			if now.Before(g.ExpiresAt) {
				return true
			}
		}
	}
	return false
}

// Index caches each tenant's grants by subject, keyed by the tenant's
// access version: any change to a tenant's grants moves the version, and a
// node that sees a new version rebuilds the tenant's entry. Expiry is
// checked at decision time, so a cached grant never outlives its expiry.
type Index struct {
	mu      sync.RWMutex
	tenants map[string]*tenantGrants
}

type tenantGrants struct {
	version  int64
	subjects map[string]*GrantSet
}

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{tenants: map[string]*tenantGrants{}} }

// Lookup returns the subject's set if the index holds the tenant at
// version.
func (x *Index) Lookup(tenantID string, version int64, subjectID string) (*GrantSet, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t, ok := x.tenants[tenantID]
	if !ok || t.version != version {
		return nil, false
	}
	return t.subjects[subjectID], true
}

// Store replaces a tenant's entry with the live grants at version, grouped
// by subject.
func (x *Index) Store(tenantID string, version int64, bySubject map[string][]GrantRef) {
	t := &tenantGrants{version: version, subjects: make(map[string]*GrantSet, len(bySubject))}
	for sub, refs := range bySubject {
		t.subjects[sub] = NewGrantSet(refs)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if cur, ok := x.tenants[tenantID]; ok && cur.version > version {
		return
	}
	x.tenants[tenantID] = t
}

// Forget drops a tenant's entry.
func (x *Index) Forget(tenantID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.tenants, tenantID)
}

package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/custodia-project/custodia/internal/access"
	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/auth"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/sharelinks"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/sys"
	"github.com/custodia-project/custodia/internal/tenant"
	"github.com/custodia-project/custodia/internal/vault"
)

// Deps are the services the handlers call.
type Deps struct {
	Store    store.Store
	Sys      *sys.Service
	Tenants  *tenant.Service
	Auth     *auth.Service
	Audit    *audit.Log
	Identity *identity.Service
	Access   *access.Service
	Vault    *vault.Service
	Shares   *sharelinks.Service
	Now      func() time.Time
	// Ready reports whether storage answers and the vault is unsealed.
	Ready   func(ctx context.Context) error
	Metrics http.Handler
	Version string
}

// Routes is the route table: the single source of truth for what the server
// mounts, who may call it and what the OpenAPI document says.
func Routes(d *Deps) []Route {
	h := &handlers{d: d}
	rs := []Route{
		{Method: "GET", Pattern: "/healthz", Perm: authz.Public, Tag: "health", Summary: "Process is up", Quiet: true,
			Response: Health{}, Handler: h.healthz},
		{Method: "GET", Pattern: "/readyz", Perm: authz.Public, Tag: "health", Summary: "Storage reachable and vault unsealed (503 otherwise)", Quiet: true,
			Response: Health{}, Handler: h.readyz},
		{Method: "GET", Pattern: "/metrics", Perm: authz.Metrics, Tag: "health", Summary: "Prometheus metrics", Quiet: true,
			RawContentType: "text/plain", Handler: h.metrics},
		{Method: "GET", Pattern: "/api/v1/openapi.json", Perm: authz.Public, Tag: "meta", Summary: "This API's OpenAPI 3.1 document",
			Response: map[string]any{}, Handler: nil}, // set below: needs the finished table

		{Method: "GET", Pattern: "/api/v1/sys/seal-status", Perm: authz.Public, Tag: "sys", Summary: "Seal state and unseal progress",
			Response: keys.Status{}, Handler: h.sealStatus},
		{Method: "POST", Pattern: "/api/v1/sys/init", Perm: authz.Public, Tag: "sys", Summary: "Initialize a new installation: root key shares and the first operator token, shown once",
			Request: sys.InitRequest{}, Response: InitResponse{}, Handler: h.init},
		{Method: "POST", Pattern: "/api/v1/sys/unseal", Perm: authz.Public, Tag: "sys", Summary: "Give one unseal share",
			Request: UnsealRequest{}, Response: keys.Status{}, Handler: h.unseal},
		{Method: "POST", Pattern: "/api/v1/sys/seal", Perm: authz.SysManage, Tag: "sys", Summary: "Drop the root key from memory",
			Response: keys.Status{}, Handler: h.seal},
		{Method: "POST", Pattern: "/api/v1/sys/rotate-root", Perm: authz.SysManage, Unsealed: true, Tag: "sys",
			Summary: "Replace the root key and re-wrap every tenant key; new shares shown once",
			Request: sys.RotateRootRequest{}, Response: RotateRootResponse{}, Handler: h.rotateRoot},

		{Method: "GET", Pattern: "/api/v1/sys/tokens", Perm: authz.TokensManage, Tag: "tokens", Summary: "List operator tokens",
			Response: TokenList{}, Handler: h.listTokens},
		{Method: "POST", Pattern: "/api/v1/sys/tokens", Perm: authz.TokensManage, Tag: "tokens", Summary: "Create an operator token, shown once",
			Request: CreateTokenRequest{}, Response: CreateTokenResponse{}, Status: http.StatusCreated, Handler: h.createToken},
		{Method: "DELETE", Pattern: "/api/v1/sys/tokens/{id}", Perm: authz.TokensManage, Tag: "tokens", Summary: "Revoke an operator token at once",
			Status: http.StatusNoContent, Handler: h.revokeToken},

		{Method: "GET", Pattern: "/api/v1/tenants", Perm: authz.TenantsRead, Unsealed: true, Tag: "tenants", Summary: "List tenants",
			Query:    []Param{{"after", "last tenant ID of the previous page", "string"}, {"limit", "page size (max 1000)", "integer"}},
			Response: TenantList{}, Handler: h.listTenants},
		{Method: "POST", Pattern: "/api/v1/tenants", Perm: authz.TenantsManage, Unsealed: true, Tag: "tenants", Summary: "Create a tenant and its first key",
			Request: tenant.CreateInput{}, Response: Tenant{}, Status: http.StatusCreated, Handler: h.createTenant},
		{Method: "GET", Pattern: "/api/v1/tenants/{tenant}", Perm: authz.TenantsRead, TenantParam: "tenant", Unsealed: true, Tag: "tenants",
			Summary: "Show a tenant (by ID or slug)", Response: Tenant{}, Handler: h.getTenant},
		{Method: "POST", Pattern: "/api/v1/tenants/{tenant}/suspend", Perm: authz.TenantsManage, TenantParam: "tenant", Unsealed: true, Tag: "tenants",
			Summary: "Suspend a tenant", Request: StatusRequest{}, Response: Tenant{}, Handler: h.setStatus(store.TenantSuspended)},
		{Method: "POST", Pattern: "/api/v1/tenants/{tenant}/resume", Perm: authz.TenantsManage, TenantParam: "tenant", Unsealed: true, Tag: "tenants",
			Summary: "Resume a suspended tenant", Request: StatusRequest{}, Response: Tenant{}, Handler: h.setStatus(store.TenantActive)},
		{Method: "POST", Pattern: "/api/v1/tenants/{tenant}/shred", Perm: authz.TenantsManage, TenantParam: "tenant", Unsealed: true, Tag: "tenants",
			Summary: "Crypto-shred a tenant: destroy every key version (irreversible)", Request: ShredRequest{}, Response: Tenant{}, Handler: h.shred},
		{Method: "GET", Pattern: "/api/v1/tenants/{tenant}/keys", Perm: authz.TenantsRead, TenantParam: "tenant", Unsealed: true, Tag: "keys",
			Summary: "Key versions and the records sealed under each", Response: KeyList{}, Handler: h.keys},
		{Method: "POST", Pattern: "/api/v1/tenants/{tenant}/keys/rotate", Perm: authz.TenantsManage, TenantParam: "tenant", Unsealed: true, Tag: "keys",
			Summary: "New key version for new writes; re-wraps old records in the background", Response: RotateResponse{}, Status: http.StatusAccepted, Handler: h.rotate},
		{Method: "GET", Pattern: "/api/v1/tenants/{tenant}/public-key", Perm: authz.TenantsRead, TenantParam: "tenant", Unsealed: true, Tag: "keys",
			Summary: "The tenant's HPKE public key (ML-KEM-768 + X25519) for sealed submissions", Response: PublicKey{}, Handler: h.publicKey},
		{Method: "GET", Pattern: "/api/v1/audit/public-key", Perm: authz.Public, Unsealed: true, Tag: "audit",
			Summary:  "The note verifier key that checks every audit checkpoint (for custodia audit verify --key)",
			Response: PublicKeyNote{}, Handler: h.auditPublicKey},

		{Method: "GET", Pattern: "/api/v1/jobs", Perm: authz.JobsRead, Unsealed: true, Tag: "jobs", Summary: "Recent background jobs",
			Query:    []Param{{"tenant", "only this tenant's jobs (ID)", "string"}, {"limit", "how many (max 1000)", "integer"}},
			Response: JobList{}, Handler: h.listJobs},
		{Method: "GET", Pattern: "/api/v1/jobs/{id}", Perm: authz.JobsRead, Unsealed: true, Tag: "jobs", Summary: "One job and its progress",
			Response: Job{}, Handler: h.getJob},
	}
	rs = append(rs, auditRoutes(h, "/api/v1/tenants/{tenant}/audit", "tenant", "tenant log")...)
	rs = append(rs, auditRoutes(h, "/api/v1/audit/operator", "", "operator log")...)
	rs = append(rs, identityRoutes(h)...)
	rs = append(rs, vaultRoutes(h)...)
	rs = append(rs, vaultRoutesV1(h)...)
	rs = append(rs, breakGlassRoutes(h)...)
	rs = append(rs, shareRoutes(h)...)
	rs = append(rs, certRoutes(h)...)
	rs = append(rs, vaultHealthRoutes(h)...)
	doc := OpenAPI(rs, d.Version)
	body, _ := json.MarshalIndent(doc, "", "  ")
	for i := range rs {
		if rs[i].Pattern == "/api/v1/openapi.json" {
			rs[i].Handler = func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "application/json")
				_, err := w.Write(body)
				return err
			}
		}
	}
	return rs
}

var auditQuery = []Param{
	{"after", "sequence number of the last event already seen (-1 for the start)", "integer"},
	{"limit", "page size (max 1000)", "integer"},
	{"action", "only this action", "string"},
	{"actor", "only this actor ID", "string"},
	{"target", "only this target", "string"},
	{"since", "RFC 3339 time, inclusive", "string"},
	{"until", "RFC 3339 time, exclusive", "string"},
}

type handlers struct{ d *Deps }

// ---- bodies ----

// Health is the body of /healthz and /readyz.
type Health struct {
	Status  string `json:"status"`
	Sealed  bool   `json:"sealed,omitempty"`
	Version string `json:"version,omitempty"`
}

// UnsealRequest gives one share, or resets the progress.
type UnsealRequest struct {
	Share string `json:"share"`
	Reset bool   `json:"reset,omitempty"`
}

// InitResponse carries what is shown once at initialization.
type InitResponse struct {
	SealType      string    `json:"seal_type"`
	Shares        []string  `json:"shares,omitempty"`
	Threshold     int       `json:"threshold,omitempty"`
	OperatorToken string    `json:"operator_token"`
	TokenID       string    `json:"operator_token_id"`
	TokenExpires  time.Time `json:"operator_token_expires_at"`
}

// RotateRootResponse carries the new shares (or new key file content).
type RotateRootResponse struct {
	Generation int      `json:"generation"`
	Shares     []string `json:"shares,omitempty"`
	Threshold  int      `json:"threshold,omitempty"`
	NewRootKey string   `json:"new_root_key,omitempty"`
}

type CreateTokenRequest struct {
	Name string `json:"name"`
	// TTL is a Go duration ("720h"); default 720h, at most 8760h.
	TTL string `json:"ttl,omitempty"`
}

type CreateTokenResponse struct {
	Token string         `json:"token"`
	Info  auth.TokenInfo `json:"info"`
}

type TokenList struct {
	Tokens []auth.TokenInfo `json:"tokens"`
}

// Tenant is a tenant as the API shows it.
type Tenant struct {
	ID        string    `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func tenantView(t *store.Tenant) Tenant {
	return Tenant{ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

type TenantList struct {
	Tenants []Tenant `json:"tenants"`
	// Next is the "after" value of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

type StatusRequest struct {
	Reason string `json:"reason,omitempty"`
}

type ShredRequest struct {
	// Confirm must repeat the tenant's slug.
	Confirm string `json:"confirm"`
}

type KeyList struct {
	Keys []keys.KeyInfo `json:"keys"`
}

type RotateResponse struct {
	Version int `json:"version"`
	Job     Job `json:"job"`
}

type PublicKey struct {
	TenantID string `json:"tenant_id"`
	Version  int    `json:"version"`
	// Suite names the HPKE cipher suite.
	Suite string `json:"suite"`
	// PublicKey is the KEM public key, base64.
	PublicKey string `json:"public_key"`
}

// Job is a background job and its progress.
type Job struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	TenantID  string    `json:"tenant_id,omitempty"`
	State     string    `json:"state"`
	Total     int64     `json:"total"`
	Done      int64     `json:"done"`
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func jobView(j *store.Job) Job {
	return Job{ID: j.ID, Kind: j.Kind, TenantID: j.TenantID, State: j.State, Total: j.Total, Done: j.Done, Error: j.Error, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
}

type JobList struct {
	Jobs []Job `json:"jobs"`
}

// AuditEvent is one audit entry.
type AuditEvent struct {
	Log       string          `json:"log"`
	Seq       int64           `json:"seq"`
	Time      time.Time       `json:"time"`
	ActorType string          `json:"actor_type"`
	ActorID   string          `json:"actor_id"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Result    string          `json:"result"`
	SourceIP  string          `json:"source_ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Details   json.RawMessage `json:"details"`
	// Pruned entries keep only their place in the tree.
	Pruned bool `json:"pruned,omitempty"`
}

func eventView(e *store.AuditEvent) AuditEvent {
	return AuditEvent{Log: e.LogID, Seq: e.Seq, Time: e.Time, ActorType: e.ActorType, ActorID: e.ActorID,
		Action: e.Action, Target: e.Target, Result: e.Result, SourceIP: e.SourceIP, UserAgent: e.UserAgent,
		RequestID: e.RequestID, Details: json.RawMessage(e.Details), Pruned: e.Pruned}
}

type AuditList struct {
	Events []AuditEvent `json:"events"`
	// Next is the "after" value of the next page; absent on the last.
	Next *int64 `json:"next,omitempty"`
}

// ---- handlers ----

func (h *handlers) healthz(w http.ResponseWriter, r *http.Request) error {
	WriteJSON(w, http.StatusOK, Health{Status: "ok", Version: h.d.Version})
	return nil
}

func (h *handlers) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := h.d.Ready(r.Context()); err != nil {
		st, _ := h.d.Sys.Status(r.Context())
		WriteJSON(w, http.StatusServiceUnavailable, Health{Status: "not ready: " + Public(err).Message, Sealed: st.Sealed})
		return nil
	}
	WriteJSON(w, http.StatusOK, Health{Status: "ready"})
	return nil
}

func (h *handlers) metrics(w http.ResponseWriter, r *http.Request) error {
	h.d.Metrics.ServeHTTP(w, r)
	return nil
}

func (h *handlers) sealStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := h.d.Sys.Status(r.Context())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, st)
	return nil
}

func reveal(ss []keys.Secret) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func (h *handlers) init(w http.ResponseWriter, r *http.Request) error {
	var req sys.InitRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	res, err := h.d.Sys.Init(r.Context(), req)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, InitResponse{SealType: res.SealType, Shares: reveal(res.Shares), Threshold: res.Threshold,
		OperatorToken: string(res.OperatorToken), TokenID: res.TokenID, TokenExpires: res.TokenExpires})
	return nil
}

func (h *handlers) unseal(w http.ResponseWriter, r *http.Request) error {
	var req UnsealRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Share == "" && !req.Reset {
		return fault.New(fault.Invalid, "missing_share", "share is required")
	}
	st, err := h.d.Sys.Unseal(r.Context(), req.Share, req.Reset)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, st)
	return nil
}

func (h *handlers) seal(w http.ResponseWriter, r *http.Request) error {
	if err := h.d.Sys.Seal(r.Context()); err != nil {
		return err
	}
	return h.sealStatus(w, r)
}

func (h *handlers) rotateRoot(w http.ResponseWriter, r *http.Request) error {
	var req sys.RotateRootRequest
	if r.ContentLength != 0 {
		if err := Decode(r, &req); err != nil {
			return err
		}
	}
	res, err := h.d.Sys.RotateRoot(r.Context(), req)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, RotateRootResponse{Generation: res.Generation, Shares: reveal(res.Shares), Threshold: res.Threshold, NewRootKey: string(res.NewKey)})
	return nil
}

func (h *handlers) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := h.d.Auth.List(r.Context())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, TokenList{Tokens: nonNil(ts)})
	return nil
}

func (h *handlers) createToken(w http.ResponseWriter, r *http.Request) error {
	var req CreateTokenRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return fault.New(fault.Invalid, "invalid_ttl", "ttl must be a positive duration such as 720h")
		}
	}
	tok, info, err := h.d.Auth.Create(r.Context(), req.Name, ttl)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, CreateTokenResponse{Token: string(tok), Info: info})
	return nil
}

func (h *handlers) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := h.d.Auth.Revoke(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func queryInt(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fault.New(fault.Invalid, "invalid_query", "%s must be an integer", name)
	}
	return n, nil
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fault.New(fault.Invalid, "invalid_query", "%s must be an RFC 3339 time", name)
	}
	return t, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *handlers) listTenants(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 100)
	if err != nil {
		return err
	}
	limit = min(max(limit, 1), 1000)
	ts, err := h.d.Tenants.List(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		return err
	}
	out := TenantList{Tenants: []Tenant{}}
	for i := range ts {
		out.Tenants = append(out.Tenants, tenantView(&ts[i]))
	}
	if len(ts) == limit {
		out.Next = ts[len(ts)-1].ID
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) createTenant(w http.ResponseWriter, r *http.Request) error {
	var in tenant.CreateInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	t, err := h.d.Tenants.Create(r.Context(), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, tenantView(t))
	return nil
}

func (h *handlers) getTenant(w http.ResponseWriter, r *http.Request) error {
	t, err := h.d.Tenants.Get(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, tenantView(t))
	return nil
}

func (h *handlers) setStatus(status string) Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req StatusRequest
		if r.ContentLength != 0 {
			if err := Decode(r, &req); err != nil {
				return err
			}
		}
		t, err := h.d.Tenants.SetStatus(r.Context(), r.PathValue("tenant"), status, req.Reason)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, tenantView(t))
		return nil
	}
}

func (h *handlers) shred(w http.ResponseWriter, r *http.Request) error {
	var req ShredRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	t, err := h.d.Tenants.Shred(r.Context(), r.PathValue("tenant"), req.Confirm)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, tenantView(t))
	return nil
}

func (h *handlers) keys(w http.ResponseWriter, r *http.Request) error {
	ks, err := h.d.Tenants.Keys(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, KeyList{Keys: nonNil(ks)})
	return nil
}

func (h *handlers) rotate(w http.ResponseWriter, r *http.Request) error {
	v, j, err := h.d.Tenants.RotateKey(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, RotateResponse{Version: v, Job: jobView(j)})
	return nil
}

func (h *handlers) publicKey(w http.ResponseWriter, r *http.Request) error {
	t, v, pub, err := h.d.Tenants.PublicKey(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, PublicKey{TenantID: t.ID, Version: v, Suite: keys.SubmissionSuite, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	return nil
}

func (h *handlers) audit(w http.ResponseWriter, r *http.Request, logID string) error {
	after, err := queryInt(r, "after", -1)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100)
	if err != nil {
		return err
	}
	limit = min(max(limit, 1), 1000)
	since, err := queryTime(r, "since")
	if err != nil {
		return err
	}
	until, err := queryTime(r, "until")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFilter{LogID: logID, AfterSeq: int64(after), Action: q.Get("action"), ActorID: q.Get("actor"),
		Target: q.Get("target"), Since: since, Until: until, Limit: limit}
	var evs []store.AuditEvent
	err = h.d.Store.View(r.Context(), func(tx store.Tx) error {
		var err error
		evs, err = tx.ListAudit(r.Context(), f)
		return err
	})
	if err != nil {
		return err
	}
	out := AuditList{Events: []AuditEvent{}}
	for i := range evs {
		out.Events = append(out.Events, eventView(&evs[i]))
	}
	if len(evs) == limit {
		next := evs[len(evs)-1].Seq
		out.Next = &next
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) listJobs(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		return err
	}
	js, err := h.d.Tenants.Jobs(r.Context(), r.URL.Query().Get("tenant"), min(max(limit, 1), 1000))
	if err != nil {
		return err
	}
	out := JobList{Jobs: []Job{}}
	for i := range js {
		out.Jobs = append(out.Jobs, jobView(&js[i]))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) getJob(w http.ResponseWriter, r *http.Request) error {
	j, err := h.d.Tenants.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, jobView(j))
	return nil
}

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/vault"
)

// The Vault-compatible API (/v1): enough of HashiCorp Vault's HTTP API for
// machine clients that already speak it (the stock Vault and OpenBao CLIs
// and client libraries) to use a tenant's credentials as a KV version 2
// mount named "secret". The token comes in X-Vault-Token (or as a bearer
// token); its tenant is the mount. Every call goes through the same vault
// service as the native API, so the same rules hold: people write but
// never read back, robots read under a lease with a purpose, every read is
// audited.

// VaultMount is the one KV v2 mount a tenant's credentials appear as.
const VaultMount = "secret"

// Request headers Custodia adds to Vault's dialect.
const (
	// PurposeHeader is why a robot reads a secret (audited); a default
	// naming the Vault API is used without it.
	PurposeHeader = "X-Custodia-Purpose"
	// ReasonHeader lets a person reveal a revealable secret through /v1,
	// under the same rules as the native reveal.
	ReasonHeader = "X-Custodia-Reason"
	// DefaultPurpose is the audited purpose of a /v1 read without one.
	DefaultPurpose = "read through the Vault-compatible API"
)

// VaultResponse is Vault's response envelope.
type VaultResponse struct {
	RequestID     string   `json:"request_id"`
	LeaseID       string   `json:"lease_id"`
	Renewable     bool     `json:"renewable"`
	LeaseDuration int      `json:"lease_duration"`
	Data          any      `json:"data"`
	WrapInfo      any      `json:"wrap_info"`
	Warnings      []string `json:"warnings"`
	Auth          any      `json:"auth"`
	MountType     string   `json:"mount_type,omitempty"`
}

// KVVersionMetadata is the metadata of one KV v2 version.
type KVVersionMetadata struct {
	CreatedTime    string            `json:"created_time"`
	CustomMetadata map[string]string `json:"custom_metadata"`
	DeletionTime   string            `json:"deletion_time"`
	Destroyed      bool              `json:"destroyed"`
	Version        int               `json:"version"`
}

// KVSecret is a KV v2 read's data.
type KVSecret struct {
	Data     map[string]string `json:"data"`
	Metadata KVVersionMetadata `json:"metadata"`
}

// KVWrite is a KV v2 write's body.
type KVWrite struct {
	Data    map[string]any `json:"data"`
	Options struct {
		CAS *int `json:"cas,omitempty"`
	} `json:"options"`
}

// KVVersions names versions for delete, undelete and destroy.
type KVVersions struct {
	Versions []int `json:"versions"`
}

// KVMetadata is a KV v2 metadata read's data.
type KVMetadata struct {
	CASRequired        bool                      `json:"cas_required"`
	CreatedTime        string                    `json:"created_time"`
	CurrentVersion     int                       `json:"current_version"`
	CustomMetadata     map[string]string         `json:"custom_metadata"`
	DeleteVersionAfter string                    `json:"delete_version_after"`
	MaxVersions        int                       `json:"max_versions"`
	OldestVersion      int                       `json:"oldest_version"`
	UpdatedTime        string                    `json:"updated_time"`
	Versions           map[string]KVVersionBrief `json:"versions"`
}

// KVVersionBrief is one version in a metadata read.
type KVVersionBrief struct {
	CreatedTime  string `json:"created_time"`
	DeletionTime string `json:"deletion_time"`
	Destroyed    bool   `json:"destroyed"`
}

// KVMetadataWrite changes a path's settings.
type KVMetadataWrite struct {
	MaxVersions        *int              `json:"max_versions,omitempty"`
	CASRequired        *bool             `json:"cas_required,omitempty"`
	CustomMetadata     map[string]string `json:"custom_metadata,omitempty"`
	DeleteVersionAfter string            `json:"delete_version_after,omitempty"`
}

// KVKeys is a LIST's data.
type KVKeys struct {
	Keys []string `json:"keys"`
}

// VaultHealth is sys/health's answer.
type VaultHealth struct {
	Initialized                bool   `json:"initialized"`
	Sealed                     bool   `json:"sealed"`
	Standby                    bool   `json:"standby"`
	PerformanceStandby         bool   `json:"performance_standby"`
	ReplicationPerformanceMode string `json:"replication_performance_mode"`
	ReplicationDRMode          string `json:"replication_dr_mode"`
	ServerTimeUTC              int64  `json:"server_time_utc"`
	Version                    string `json:"version"`
	ClusterName                string `json:"cluster_name"`
}

// VaultMountInfo describes a mount in sys/mounts.
type VaultMountInfo struct {
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Accessor    string            `json:"accessor"`
	Local       bool              `json:"local"`
	SealWrap    bool              `json:"seal_wrap"`
	Options     map[string]string `json:"options"`
	Config      map[string]any    `json:"config"`
	Path        string            `json:"path,omitempty"`
}

// AppRoleLogin is auth/approle/login's body.
type AppRoleLogin struct {
	RoleID   string `json:"role_id"`
	SecretID string `json:"secret_id"`
}

// VaultAuth is the auth block of a login.
type VaultAuth struct {
	ClientToken   string            `json:"client_token"`
	Accessor      string            `json:"accessor"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
	LeaseDuration int               `json:"lease_duration"`
	Renewable     bool              `json:"renewable"`
	EntityID      string            `json:"entity_id"`
	TokenType     string            `json:"token_type"`
	Orphan        bool              `json:"orphan"`
}

// VaultTokenInfo is lookup-self's data.
type VaultTokenInfo struct {
	Accessor       string            `json:"accessor"`
	CreationTime   int64             `json:"creation_time"`
	CreationTTL    int64             `json:"creation_ttl"`
	DisplayName    string            `json:"display_name"`
	EntityID       string            `json:"entity_id"`
	ExpireTime     string            `json:"expire_time"`
	ExplicitMaxTTL int64             `json:"explicit_max_ttl"`
	ID             string            `json:"id"`
	IssueTime      string            `json:"issue_time"`
	Meta           map[string]string `json:"meta"`
	NumUses        int               `json:"num_uses"`
	Orphan         bool              `json:"orphan"`
	Path           string            `json:"path"`
	Policies       []string          `json:"policies"`
	Renewable      bool              `json:"renewable"`
	TTL            int64             `json:"ttl"`
	Type           string            `json:"type"`
}

// VaultLease renews, revokes or looks up a lease. The lease may be named
// in the path instead (sys/leases/renew/:lease_id and the like); named in
// both, it must be the same.
type VaultLease struct {
	LeaseID string `json:"lease_id"`
	// Increment is how long from now a renewal asks for; none (or 0)
	// asks for the lifetime the lease was first granted.
	Increment VaultIncrement `json:"increment,omitempty"`
}

// VaultLeaseInfo is sys/leases/lookup's data.
type VaultLeaseInfo struct {
	ID         string `json:"id"`
	IssueTime  string `json:"issue_time"`
	ExpireTime string `json:"expire_time"`
	// LastRenewal is when the lease was last renewed, null if never.
	LastRenewal *string `json:"last_renewal"`
	Renewable   bool    `json:"renewable"`
	// TTL is the seconds left.
	TTL int64 `json:"ttl"`
}

// VaultIncrement is a renewal's increment in whole seconds, read as Vault
// reads it: a number (600), or a string of seconds ("600") or of a
// duration ("10m").
type VaultIncrement int64

// maxIncrement bounds what is parsed; renewals are capped far below it.
const maxIncrement = 100 * 365 * 24 * 3600

func (v *VaultIncrement) UnmarshalJSON(b []byte) error {
	bad := fault.New(fault.Invalid, "invalid_increment", "increment is a whole number of seconds (600) or a duration of at least a second (\"10m\")")
	var n int64
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return bad
		}
		s = strings.TrimSpace(s)
		switch i, err := strconv.ParseInt(s, 10, 64); {
		case s == "":
		case err == nil:
			n = i
		default:
			d, err := time.ParseDuration(s)
			if err != nil || d > 0 && d < time.Second {
				return bad
			}
			n = int64(d / time.Second)
		}
	} else if string(b) != "null" {
		i, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return bad
		}
		n = i
	}
	if n < 0 || n > maxIncrement {
		return bad
	}
	*v = VaultIncrement(n)
	return nil
}

func vaultRoutesV1(h *handlers) []Route {
	kv := func(method, sub string, perm authz.Permission, summary string, req, resp any, status int, fn Handler) Route {
		return Route{Method: method, Pattern: "/v1/" + VaultMount + "/" + sub + "/{path...}", Perm: perm, Unsealed: true, Vault: true,
			Tag: "vault-compatible", Summary: summary, Request: req, Response: resp, Status: status, Handler: fn}
	}
	sys := func(method, pattern string, perm authz.Permission, summary string, req, resp any, status int, fn Handler) Route {
		return Route{Method: method, Pattern: pattern, Perm: perm, Unsealed: true, Vault: true, Tag: "vault-compatible",
			Summary: summary, Request: req, Response: resp, Status: status, Handler: fn}
	}
	read := kv("GET", "data", authz.VaultUse, "KV v2 read: a robot fetches the secret under a lease (X-Custodia-Purpose says why); people cannot read back",
		nil, VaultResponse{}, 0, h.kvRead)
	read.Query = []Param{{"version", "a version to read instead of the current one", "integer"}}
	read.Confirms = true
	meta := kv("GET", "metadata", authz.VaultUse, "KV v2 metadata (versions, settings); with ?list=true the keys under a path", nil, VaultResponse{}, 0, h.kvMetadata)
	meta.Query = []Param{{"list", "true lists the keys under the path", "boolean"}}
	health := sys("GET", "/v1/sys/health", authz.Public, "Vault-style health: 200 active, 503 sealed, 501 not initialized", nil, VaultHealth{}, 0, h.vaultHealth)
	health.Quiet, health.Unsealed = true, false
	return []Route{
		read,
		kv("PUT", "data", authz.VaultWrite, "KV v2 write (options.cas for check-and-set); values must be strings", KVWrite{}, VaultResponse{}, 0, h.kvWrite),
		kv("POST", "data", authz.VaultWrite, "KV v2 write (as PUT)", KVWrite{}, VaultResponse{}, 0, h.kvWrite),
		kv("DELETE", "data", authz.VaultWrite, "KV v2 soft-delete of the current version", nil, nil, http.StatusNoContent, h.kvVersions(vault.SoftDelete)),
		kv("POST", "delete", authz.VaultWrite, "KV v2 soft-delete of versions", KVVersions{}, nil, http.StatusNoContent, h.kvVersions(vault.SoftDelete)),
		kv("PUT", "delete", authz.VaultWrite, "KV v2 soft-delete of versions (as POST)", KVVersions{}, nil, http.StatusNoContent, h.kvVersions(vault.SoftDelete)),
		kv("POST", "undelete", authz.VaultWrite, "KV v2 undelete of versions", KVVersions{}, nil, http.StatusNoContent, h.kvVersions(vault.Undelete)),
		kv("PUT", "undelete", authz.VaultWrite, "KV v2 undelete of versions (as POST)", KVVersions{}, nil, http.StatusNoContent, h.kvVersions(vault.Undelete)),
		kv("POST", "destroy", authz.VaultWrite, "KV v2 destroy: erase versions' secrets for good", KVVersions{}, nil, http.StatusNoContent, h.kvVersions(vault.Destroy)),
		kv("PUT", "destroy", authz.VaultWrite, "KV v2 destroy (as POST)", KVVersions{}, nil, http.StatusNoContent, h.kvVersions(vault.Destroy)),
		meta,
		kv("LIST", "metadata", authz.VaultUse, "KV v2 list of the keys under a path", nil, VaultResponse{}, 0, h.kvList),
		kv("POST", "metadata", authz.VaultWrite, "KV v2 settings of a path: max_versions, cas_required, custom_metadata (labels); "+
			"400 write_data_first for a path with no secret yet",
			KVMetadataWrite{}, nil, http.StatusNoContent, h.kvConfigure),
		kv("PUT", "metadata", authz.VaultWrite, "KV v2 settings of a path (as POST)", KVMetadataWrite{}, nil, http.StatusNoContent, h.kvConfigure),
		kv("DELETE", "metadata", authz.VaultWrite, "KV v2 delete of a path with every version", nil, nil, http.StatusNoContent, h.kvDeleteAll),
		health,
		sys("GET", "/v1/sys/mounts", authz.VaultWrite, "The mounts a client sees: the tenant's credentials as KV v2 at secret/", nil, map[string]any{}, 0, h.vaultMounts),
		sys("GET", "/v1/sys/internal/ui/mounts/{path...}", authz.VaultWrite, "The mount holding a path (how Vault's CLI finds KV v2)", nil,
			VaultResponse{}, 0, h.vaultMountOf),
		sys("GET", "/v1/auth/token/lookup-self", authz.Public, "The calling token's own description (never the token)", nil, VaultResponse{}, 0, h.vaultLookupSelf),
		sys("POST", "/v1/auth/approle/login", authz.Public, "AppRole login: role_id is the robot's ID, secret_id a robot token scoped to approle.login",
			AppRoleLogin{}, VaultResponse{}, 0, h.vaultAppRoleLogin),
		sys("PUT", "/v1/auth/approle/login", authz.Public, "AppRole login (as POST)", AppRoleLogin{}, VaultResponse{}, 0, h.vaultAppRoleLogin),
		sys("PUT", "/v1/sys/leases/renew", authz.VaultUse, "Renew a lease from a KV read (increment: seconds or a duration; capped at an hour, "+
			"with a warning; none or 0: the lifetime the lease was first granted); 400 \"lease not found\" for a lease that is not the "+
			"caller's live one", VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("POST", "/v1/sys/leases/renew", authz.VaultUse, "Renew a lease (as PUT)", VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("PUT", "/v1/sys/leases/renew/{lease...}", authz.VaultUse, "Renew the lease named in the path (as sys/leases/renew)",
			VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("POST", "/v1/sys/leases/renew/{lease...}", authz.VaultUse, "Renew the lease named in the path (as PUT)",
			VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("PUT", "/v1/sys/renew", authz.VaultUse, "Renew a lease: Vault's deprecated spelling of sys/leases/renew", VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("POST", "/v1/sys/renew", authz.VaultUse, "Renew a lease (deprecated spelling, as PUT)", VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("PUT", "/v1/sys/renew/{lease...}", authz.VaultUse, "Renew the lease named in the path (deprecated spelling of sys/leases/renew/:lease_id)",
			VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("POST", "/v1/sys/renew/{lease...}", authz.VaultUse, "Renew the lease named in the path (deprecated spelling, as PUT)",
			VaultLease{}, VaultResponse{}, 0, h.vaultRenew),
		sys("PUT", "/v1/sys/leases/revoke", authz.VaultUse, "Revoke a lease from a KV read at once; 204 also for a lease that does not exist or "+
			"is not the caller's to revoke (which stays as it is)", VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("POST", "/v1/sys/leases/revoke", authz.VaultUse, "Revoke a lease (as PUT)", VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("PUT", "/v1/sys/leases/revoke/{lease...}", authz.VaultUse, "Revoke the lease named in the path (as sys/leases/revoke)",
			VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("POST", "/v1/sys/leases/revoke/{lease...}", authz.VaultUse, "Revoke the lease named in the path (as PUT)",
			VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("PUT", "/v1/sys/revoke", authz.VaultUse, "Revoke a lease: Vault's deprecated spelling of sys/leases/revoke", VaultLease{}, nil,
			http.StatusNoContent, h.vaultRevoke),
		sys("POST", "/v1/sys/revoke", authz.VaultUse, "Revoke a lease (deprecated spelling, as PUT)", VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("PUT", "/v1/sys/revoke/{lease...}", authz.VaultUse, "Revoke the lease named in the path (deprecated spelling of sys/leases/revoke/:lease_id)",
			VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("POST", "/v1/sys/revoke/{lease...}", authz.VaultUse, "Revoke the lease named in the path (deprecated spelling, as PUT)",
			VaultLease{}, nil, http.StatusNoContent, h.vaultRevoke),
		sys("PUT", "/v1/sys/leases/lookup", authz.VaultUse, "The caller's own live lease: issue and expire times, seconds left; "+
			"400 \"invalid lease\" for any other", VaultLease{}, VaultResponse{}, 0, h.vaultLookupLease),
		sys("POST", "/v1/sys/leases/lookup", authz.VaultUse, "Look up a lease (as PUT)", VaultLease{}, VaultResponse{}, 0, h.vaultLookupLease),
	}
}

// vaultTime formats a time as Vault does (RFC 3339, fractions of a second
// without trailing zeros), "" for never. Times are stored to the
// microsecond, so they are shown to the microsecond: a write's answer
// then says what its later reads and metadata say.
func vaultTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// writeVault writes a successful Vault response.
func writeVault(w http.ResponseWriter, resp VaultResponse) error {
	resp.RequestID = w.Header().Get("X-Request-Id")
	WriteJSON(w, http.StatusOK, resp)
	return nil
}

// decodeVault reads a Vault request body: one JSON object, unknown fields
// ignored as Vault ignores them, an empty body as {}.
func decodeVault(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.As(err, &mbe):
			return err
		}
		if _, ok := fault.As(err); ok {
			return err // a field's own decoder said what is wrong (VaultIncrement)
		}
		return fault.Wrap(err, fault.Invalid, "malformed_json", "failed to parse JSON input: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fault.New(fault.Invalid, "malformed_json", "failed to parse JSON input: exactly one JSON object is expected")
	}
	return nil
}

// kvPath is the credential name a /v1 KV path names.
func kvPath(r *http.Request) (string, error) {
	p := strings.Trim(r.PathValue("path"), "/")
	if p == "" {
		return "", fault.New(fault.Invalid, "missing_path", "a secret path is required, e.g. secret/data/bank/santander")
	}
	return p, nil
}

func (h *handlers) kvRead(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		name, err := kvPath(r)
		if err != nil {
			return err
		}
		version := 0
		if s := r.URL.Query().Get("version"); s != "" && s != "0" {
			if version, err = strconv.Atoi(s); err != nil || version < 0 {
				return fault.New(fault.Invalid, "invalid_version", "version must be a positive integer")
			}
		}
		var sec *vault.Secret
		p := authz.From(r.Context())
		if reason := r.Header.Get(ReasonHeader); reason != "" && p.Kind == authz.KindMember {
			sec, err = h.d.Vault.Reveal(r.Context(), tid, name, vault.RevealInput{Reason: reason, Version: version})
		} else {
			purpose := strings.TrimSpace(r.Header.Get(PurposeHeader))
			if purpose == "" {
				purpose = DefaultPurpose
			}
			sec, err = h.d.Vault.Fetch(r.Context(), tid, name, vault.FetchInput{Purpose: purpose, Version: version})
		}
		if fe, ok := fault.As(err); ok && fe.Code == "version_deleted" {
			return h.kvGone(w, r, tid, name, version, err)
		}
		if err != nil {
			return err
		}
		noStore(w)
		resp := VaultResponse{Data: KVSecret{Data: sec.Fields, Metadata: KVVersionMetadata{CreatedTime: vaultTime(sec.CreatedAt),
			CustomMetadata: customMetadata(sec.Labels), Version: sec.Version}}, MountType: "kv"}
		if sec.LeaseID != "" {
			resp.LeaseID, resp.Renewable = sec.LeaseID, true
			resp.LeaseDuration = int(sec.ExpiresAt.Sub(h.d.Now()).Round(time.Second).Seconds())
		}
		return writeVault(w, resp)
	})(w, r)
}

// kvGone answers a read that found its version deleted or destroyed as
// Vault's KV v2 does: 404 with the version's metadata and null data, which
// clients read as a secret whose data is gone (the official client's
// KVv2 Get returns it with nil Data and the deletion time), not as a path
// that never held one. Should the version be live again by now, the read's
// own error (readErr) stands.
func (h *handlers) kvGone(w http.ResponseWriter, r *http.Request, tid, name string, version int, readErr error) error {
	g, err := h.d.Vault.GoneVersion(r.Context(), tid, name, version)
	if err != nil {
		return err
	}
	if g == nil {
		return readErr
	}
	noStore(w)
	fe, _ := fault.As(readErr)
	w.Header().Set("X-Custodia-Error", fe.Code)
	WriteJSON(w, http.StatusNotFound, VaultResponse{RequestID: w.Header().Get("X-Request-Id"), MountType: "kv",
		Data: KVSecret{Metadata: KVVersionMetadata{CreatedTime: vaultTime(g.CreatedAt), CustomMetadata: customMetadata(g.Labels),
			DeletionTime: vaultTime(g.DeletedAt), Destroyed: !g.DestroyedAt.IsZero(), Version: g.Version.Version}}})
	return nil
}

func (h *handlers) kvWrite(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		name, err := kvPath(r)
		if err != nil {
			return err
		}
		var in KVWrite
		if err := decodeVault(r, &in); err != nil {
			return err
		}
		if in.Data == nil {
			return fault.New(fault.Invalid, "no_data", "no data provided: write {\"data\": {\"password\": \"...\"}}")
		}
		fields := make(vault.Fields, len(in.Data))
		for k, v := range in.Data {
			s, ok := v.(string)
			if !ok {
				return fault.New(fault.Invalid, "invalid_secret", "value of %q must be a string: Custodia keeps secret fields as text", k)
			}
			fields[k] = s
		}
		c, err := h.d.Vault.Put(r.Context(), tid, vault.PutInput{Name: name, Secret: fields, CAS: in.Options.CAS})
		if err != nil {
			if fe, ok := fault.As(err); ok && fe.Code == "cas_mismatch" {
				return fault.New(fault.Conflict, "cas_mismatch", "check-and-set parameter did not match the current version")
			}
			return err
		}
		return writeVault(w, VaultResponse{Data: KVVersionMetadata{CreatedTime: vaultTime(c.UpdatedAt), CustomMetadata: customMetadata(c.Labels),
			Version: c.CurrentVersion}, MountType: "kv"})
	})(w, r)
}

func (h *handlers) kvVersions(op string) Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
			name, err := kvPath(r)
			if err != nil {
				return err
			}
			var in KVVersions
			if r.Method != http.MethodDelete {
				if err := decodeVault(r, &in); err != nil {
					return err
				}
				if len(in.Versions) == 0 {
					return fault.New(fault.Invalid, "no_versions", "no version number provided")
				}
			}
			if err := h.d.Vault.ChangeVersions(r.Context(), tid, name, op, in.Versions); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		})(w, r)
	}
}

func (h *handlers) kvMetadata(w http.ResponseWriter, r *http.Request) error {
	if v := r.URL.Query().Get("list"); v == "true" || v == "1" {
		return h.kvList(w, r)
	}
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		name, err := kvPath(r)
		if err != nil {
			return err
		}
		m, err := h.d.Vault.Metadata(r.Context(), tid, name)
		if err != nil {
			return err
		}
		out := KVMetadata{CASRequired: m.CASRequired, CreatedTime: vaultTime(m.Credential.CreatedAt), CurrentVersion: m.CurrentVersion,
			CustomMetadata: customMetadata(m.Credential.Labels), DeleteVersionAfter: "0s", MaxVersions: m.Credential.MaxVersions,
			OldestVersion: m.OldestVersion, UpdatedTime: vaultTime(m.Credential.UpdatedAt), Versions: map[string]KVVersionBrief{}}
		for _, v := range m.Versions {
			out.Versions[strconv.Itoa(v.Version)] = KVVersionBrief{CreatedTime: vaultTime(v.CreatedAt), DeletionTime: vaultTime(v.DeletedAt),
				Destroyed: !v.DestroyedAt.IsZero()}
		}
		return writeVault(w, VaultResponse{Data: out, MountType: "kv"})
	})(w, r)
}

func (h *handlers) kvList(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		keys, err := h.d.Vault.Keys(r.Context(), tid, strings.Trim(r.PathValue("path"), "/"))
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fault.New(fault.NotFound, "not_found", "nothing under this path")
		}
		return writeVault(w, VaultResponse{Data: KVKeys{Keys: keys}, MountType: "kv"})
	})(w, r)
}

func (h *handlers) kvConfigure(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		name, err := kvPath(r)
		if err != nil {
			return err
		}
		var in KVMetadataWrite
		if err := decodeVault(r, &in); err != nil {
			return err
		}
		if d := in.DeleteVersionAfter; d != "" && d != "0" && d != "0s" {
			return fault.New(fault.Invalid, "unsupported", "delete_version_after is not supported: versions are kept until replaced (max_versions) or deleted")
		}
		if err := h.d.Vault.Configure(r.Context(), tid, name, vault.Settings{MaxVersions: in.MaxVersions, CASRequired: in.CASRequired,
			Labels: in.CustomMetadata}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) kvDeleteAll(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		name, err := kvPath(r)
		if err != nil {
			return err
		}
		if err := h.d.Vault.Delete(r.Context(), tid, name); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func kvMount() VaultMountInfo {
	return VaultMountInfo{Type: "kv", Description: "this tenant's credentials", Accessor: "kv_custodia", Options: map[string]string{"version": "2"},
		Config: map[string]any{"default_lease_ttl": int(vault.DefaultLease.Seconds()), "max_lease_ttl": int(vault.MaxLease.Seconds())}}
}

func (h *handlers) vaultMounts(w http.ResponseWriter, r *http.Request) error {
	m := map[string]VaultMountInfo{VaultMount + "/": kvMount()}
	// Vault answers with the mounts both at the top level and in data.
	out := map[string]any{"request_id": w.Header().Get("X-Request-Id"), "data": m}
	for k, v := range m {
		out[k] = v
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *handlers) vaultMountOf(w http.ResponseWriter, r *http.Request) error {
	p := strings.Trim(r.PathValue("path"), "/")
	if p != VaultMount && !strings.HasPrefix(p, VaultMount+"/") {
		return fault.New(fault.NotFound, "not_found", "no mount holds %q: the tenant's credentials are at %s/", p, VaultMount)
	}
	m := kvMount()
	m.Path = VaultMount + "/"
	return writeVault(w, VaultResponse{Data: m})
}

func (h *handlers) vaultHealth(w http.ResponseWriter, r *http.Request) error {
	st, err := h.d.Sys.Status(r.Context())
	if err != nil {
		return err
	}
	out := VaultHealth{Initialized: st.Initialized, Sealed: st.Sealed, ReplicationPerformanceMode: "disabled", ReplicationDRMode: "disabled",
		ServerTimeUTC: h.d.Now().Unix(), Version: h.d.Version, ClusterName: "custodia"}
	code := func(param string, def int) int {
		if n, err := strconv.Atoi(r.URL.Query().Get(param)); err == nil && n >= 200 && n < 600 {
			return n
		}
		return def
	}
	status := code("activecode", http.StatusOK)
	switch {
	case !st.Initialized:
		status = code("uninitcode", http.StatusNotImplemented)
	case st.Sealed:
		status = code("sealedcode", http.StatusServiceUnavailable)
	}
	WriteJSON(w, status, out)
	return nil
}

// vaultToken is the token a /v1 request carries.
func vaultToken(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return strings.TrimSpace(t)
	}
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(t)
}

func (h *handlers) vaultLookupSelf(w http.ResponseWriter, r *http.Request) error {
	if authz.From(r.Context()) == nil {
		return fault.New(fault.Unauthenticated, "no_token", "missing or invalid client token")
	}
	d, err := h.d.Auth.Describe(r.Context(), vaultToken(r))
	if err != nil {
		return err
	}
	now := h.d.Now()
	meta := map[string]string{"subject_type": d.SubjectType, "subject_id": d.SubjectID}
	if d.TenantID != "" {
		meta["tenant"] = d.TenantID
	}
	policies := []string{"default"}
	for _, s := range d.Scopes {
		policies = append(policies, "scope:"+s)
	}
	return writeVault(w, VaultResponse{Data: VaultTokenInfo{Accessor: d.ID, CreationTime: d.CreatedAt.Unix(),
		CreationTTL: int64(d.ExpiresAt.Sub(d.CreatedAt).Seconds()), DisplayName: d.Name, ExpireTime: vaultTime(d.ExpiresAt),
		IssueTime: vaultTime(d.CreatedAt), Meta: meta, Orphan: true, Path: "auth/token/create", Policies: policies,
		TTL: int64(d.ExpiresAt.Sub(now).Seconds()), Type: "service"}})
}

func (h *handlers) vaultAppRoleLogin(w http.ResponseWriter, r *http.Request) error {
	var in AppRoleLogin
	if err := decodeVault(r, &in); err != nil {
		return err
	}
	tok, rec, err := h.d.Identity.AppRoleLogin(r.Context(), strings.TrimSpace(in.RoleID), strings.TrimSpace(in.SecretID))
	if err != nil {
		return err
	}
	return writeVault(w, VaultResponse{Auth: VaultAuth{ClientToken: string(tok), Accessor: rec.ID, Policies: []string{"default"},
		TokenPolicies: []string{"default"}, Metadata: map[string]string{"role_id": rec.SubjectID, "tenant": rec.TenantID},
		LeaseDuration: int(rec.ExpiresAt.Sub(rec.CreatedAt).Seconds()), EntityID: rec.SubjectID, TokenType: "service", Orphan: true}})
}

// customMetadata is labels as Vault shows custom_metadata: null when there
// are none, whether never set or cleared.
func customMetadata(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	return labels
}

// vaultLease reads a sys/leases call's body and says which lease it names:
// lease_id in the body, or the lease ID ending the path (sys/leases/
// renew/:lease_id), or both when they are the same.
func vaultLease(r *http.Request) (VaultLease, error) {
	var in VaultLease
	if err := decodeVault(r, &in); err != nil {
		return in, err
	}
	switch path := r.PathValue("lease"); {
	case path == "":
	case in.LeaseID == "":
		in.LeaseID = path
	case in.LeaseID != path:
		return in, fault.New(fault.Invalid, "lease_id_mismatch", "the lease_id in the body is not the lease ID in the path: give one of them, or the same in both")
	}
	return in, needLeaseID(in.LeaseID)
}

func (h *handlers) vaultRenew(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		in, err := vaultLease(r)
		if err != nil {
			return err
		}
		// As Vault does, an increment past the longest lease is capped,
		// with a warning, not refused; none renews for the lease's own
		// lifetime, as Vault falls back to a lease's TTL.
		ttl, warnings := "", []string(nil)
		if inc := time.Duration(in.Increment) * time.Second; inc > 0 {
			if inc > vault.MaxLease {
				warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", inc, vault.MaxLease))
				inc = vault.MaxLease
			}
			ttl = inc.String()
		}
		l, err := h.d.Vault.RenewLease(r.Context(), tid, in.LeaseID, ttl)
		if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
			// Vault's answer for a lease it does not hold for the caller:
			// unknown, expired, revoked, another's, or one whose grant
			// is gone alike.
			return fault.Wrap(err, fault.Invalid, fe.Code, "lease not found")
		}
		if err != nil {
			return err
		}
		return writeVault(w, VaultResponse{LeaseID: l.ID, Renewable: true, LeaseDuration: int(l.ExpiresAt.Sub(h.d.Now()).Round(time.Second).Seconds()),
			Warnings: warnings})
	})(w, r)
}

func (h *handlers) vaultRevoke(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		in, err := vaultLease(r)
		if err != nil {
			return err
		}
		// As Vault does, revoking a lease that does not exist succeeds:
		// there is nothing left to revoke. A lease of another tenant, or
		// another holder's that the caller may not revoke, answers the
		// same and stays as it is, so the answer tells nobody whether
		// it exists.
		err = h.d.Vault.RevokeLease(r.Context(), tid, in.LeaseID)
		if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
			err = nil
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})(w, r)
}

func (h *handlers) vaultLookupLease(w http.ResponseWriter, r *http.Request) error {
	return h.tenantCall(func(w http.ResponseWriter, r *http.Request, tid string) error {
		in, err := vaultLease(r)
		if err != nil {
			return err
		}
		l, err := h.d.Vault.LeaseInfo(r.Context(), tid, in.LeaseID)
		if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
			// Vault's answer for a lease it does not hold; as for a
			// renewal, unknown, expired, revoked and another's alike.
			return fault.Wrap(err, fault.Invalid, fe.Code, "invalid lease")
		}
		if err != nil {
			return err
		}
		info := VaultLeaseInfo{ID: l.ID, IssueTime: vaultTime(l.CreatedAt), ExpireTime: vaultTime(l.ExpiresAt),
			Renewable: true, TTL: int64(l.ExpiresAt.Sub(h.d.Now()).Round(time.Second).Seconds())}
		if !l.RenewedAt.IsZero() {
			at := vaultTime(l.RenewedAt)
			info.LastRenewal = &at
		}
		return writeVault(w, VaultResponse{Data: info})
	})(w, r)
}

// needLeaseID refuses a renewal or revocation naming no lease, in Vault's
// words.
func needLeaseID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fault.New(fault.Invalid, "missing_lease_id", "lease_id must be specified")
	}
	return nil
}

package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/custodia-project/custodia/internal/keys"
)

// PublicKey is a tenant's HPKE public key for sealed submissions, as
// GET /api/v1/tenants/{tenant}/public-key serves it.
type PublicKey struct {
	TenantID  string `json:"tenant_id"`
	Version   int    `json:"version"`
	Suite     string `json:"suite"`
	PublicKey string `json:"public_key"` // base64
}

// TenantPublicKey fetches the public key of a tenant (by ID or slug).
func (c *Client) TenantPublicKey(ctx context.Context, tenant string) (PublicKey, error) {
	var pk PublicKey
	err := c.Do(ctx, http.MethodGet, "/api/v1/tenants/"+url.PathEscape(tenant)+"/public-key", nil, nil, &pk)
	return pk, err
}

// submission is the sealed document (docs/sealed-submission.md); the
// server decodes it as vault.Submission.
type submission struct {
	V      int               `json:"v"`
	Tenant string            `json:"tenant"`
	Name   string            `json:"name"`
	CAS    *int              `json:"cas,omitempty"`
	Secret map[string]string `json:"secret"`
}

// SealSecret seals a credential's secret fields to the tenant's public key
// for the credential name, so that whoever relays the request never holds
// the plaintext. Put the result in the credential write's sealed_secret.
// cas, when not nil, is sealed too: the version this write replaces (0:
// the credential must not exist), so a relay cannot replay the submission
// over a later version.
func SealSecret(pub PublicKey, name string, fields map[string]string, cas *int) (string, error) {
	if pub.Suite != keys.SubmissionSuite {
		return "", fmt.Errorf("seal secret: the server offers HPKE suite %q; this client knows only %s", pub.Suite, keys.SubmissionSuite)
	}
	if pub.TenantID == "" || pub.Version < 1 {
		return "", fmt.Errorf("seal secret: the public key names no tenant or key version")
	}
	raw, err := base64.StdEncoding.DecodeString(pub.PublicKey)
	if err != nil {
		return "", fmt.Errorf("seal secret: public key is not base64: %w", err)
	}
	pt, err := json.Marshal(submission{V: 1, Tenant: pub.TenantID, Name: name, CAS: cas, Secret: fields})
	if err != nil {
		return "", err
	}
	defer clear(pt)
	sealed, err := keys.SealSubmission(pub.TenantID, pub.Version, raw, pt)
	if err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sealed), nil
}

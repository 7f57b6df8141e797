package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"

	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/store"
)

// Sealed submissions (docs/sealed-submission.md): a client encrypts the
// secret fields to the tenant's HPKE public key, so a web tier in front of
// Custodia relays them without ever holding the plaintext. The HPKE
// plaintext is a Submission document; binding the credential's name in it
// stops a relay from replaying a sealed secret into another credential.

// SubmissionVersion is the version of the Submission document.
const SubmissionVersion = 1

// maxSealedLen bounds the base64 text of a sealed secret: the largest
// secret checkFields admits, as JSON, with HPKE's overhead, fits well.
const maxSealedLen = 1 << 20

// Submission is the plaintext a client seals for PutInput.SealedSecret.
type Submission struct {
	// V is SubmissionVersion.
	V int `json:"v"`
	// Tenant is the tenant's ID (tnt_...), as the public key route gives it.
	Tenant string `json:"tenant"`
	// Name is the credential's name; it must equal PutInput.Name.
	Name string `json:"name"`
	// CAS, when set, is the version this write replaces (0: the credential
	// must not exist). It stops a relay from replaying an old submission
	// over a newer version.
	CAS *int `json:"cas,omitempty"`
	// Secret are the secret fields.
	Secret Fields `json:"secret"`
}

// Errors a client gets for a sealed secret that does not do.
var (
	errSealedUnopenable = invalid("invalid_sealed_secret",
		"sealed_secret does not open: seal the submission to this organization's current public key (GET /api/v1/tenants/{tenant}/public-key), "+
			"base64-encoded, as docs/sealed-submission.md describes")
	errSealedDocument = invalid("invalid_sealed_secret",
		`the sealed submission opened but is not a version 1 document {"v":1,"tenant":...,"name":...,"secret":{...}}`)
)

// openSealed decodes, opens and checks a sealed secret for the credential
// name of the tenant, and returns its fields and the CAS it carries.
func (s *Service) openSealed(ctx context.Context, tenantID, name, sealed string) (Fields, *int, error) {
	if len(sealed) > maxSealedLen {
		return nil, nil, invalid("invalid_sealed_secret", "sealed_secret is larger than %d bytes", maxSealedLen)
	}
	blob, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, nil, invalid("invalid_sealed_secret", "sealed_secret must be standard base64 (with padding)")
	}
	var pt keys.Secret
	err = s.store.View(ctx, func(tx store.Tx) error {
		var err error
		pt, err = s.keyring.OpenSubmission(ctx, tx, tenantID, blob)
		return err
	})
	defer pt.Wipe()
	switch {
	case errors.Is(err, keys.ErrBadCiphertext):
		return nil, nil, errSealedUnopenable
	case errors.Is(err, keys.ErrKeyDestroyed):
		return nil, nil, invalid("invalid_sealed_secret", "sealed_secret was sealed to a key that no longer exists: fetch the public key again")
	case err != nil:
		return nil, nil, err
	}
	sub, err := parseSubmission(pt, tenantID, name)
	if err != nil {
		return nil, nil, err
	}
	return sub.Secret, sub.CAS, nil
}

// parseSubmission decodes a submission document strictly and checks that
// it was made for this tenant and credential name.
func parseSubmission(pt []byte, tenantID, name string) (*Submission, error) {
	dec := json.NewDecoder(bytes.NewReader(pt))
	dec.DisallowUnknownFields()
	var sub Submission
	if err := dec.Decode(&sub); err != nil {
		return nil, errSealedDocument
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errSealedDocument
	}
	switch {
	case sub.V != SubmissionVersion:
		return nil, invalid("invalid_sealed_secret", "sealed submission version %d is not supported (want %d)", sub.V, SubmissionVersion)
	case sub.Tenant != tenantID:
		return nil, invalid("sealed_tenant_mismatch", "the sealed submission names another organization; seal it for %s", tenantID)
	case sub.Name != name:
		// Never reuse a secret sealed for one credential on another: a web
		// tier relaying it must not choose where it lands.
		return nil, invalid("sealed_name_mismatch", "the sealed submission was made for another credential; seal it again for %q", name)
	case sub.Secret == nil:
		return nil, errSealedDocument
	case sub.CAS != nil && *sub.CAS < 0:
		return nil, invalid("invalid_sealed_secret", "the sealed submission's cas must not be negative")
	}
	return &sub, nil
}

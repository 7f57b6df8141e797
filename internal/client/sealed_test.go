package client_test

import (
	"crypto/hpke"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/keys"
)

// SealSecret refuses keys it cannot use rather than sealing something the
// server would refuse; a good key gives the documented layout.
func TestSealSecret(t *testing.T) {
	priv, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good := client.PublicKey{TenantID: "tnt_a", Version: 3, Suite: keys.SubmissionSuite,
		PublicKey: base64.StdEncoding.EncodeToString(priv.PublicKey().Bytes())}
	s, err := client.SealSecret(good, "bank/x", map[string]string{"password": "Zq8-client"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || raw[0] != 1 || raw[1] != 0 || raw[4] != 3 || len(raw) < 5+1120+16 || strings.Contains(string(raw), "Zq8-client") {
		t.Fatalf("sealed blob: %d bytes, %v", len(raw), err)
	}
	for name, mod := range map[string]func(*client.PublicKey){
		"fail/unknown suite": func(p *client.PublicKey) { p.Suite = "HPKE-X25519-HKDF-SHA256-AES-128-GCM" },
		"fail/no tenant":     func(p *client.PublicKey) { p.TenantID = "" },
		"fail/no version":    func(p *client.PublicKey) { p.Version = 0 },
		"fail/not base64":    func(p *client.PublicKey) { p.PublicKey = "%%%" },
		"fail/short key":     func(p *client.PublicKey) { p.PublicKey = base64.StdEncoding.EncodeToString([]byte("short")) },
	} {
		t.Run(name, func(t *testing.T) {
			pk := good
			mod(&pk)
			if _, err := client.SealSecret(pk, "bank/x", map[string]string{"password": "p"}, nil); err == nil {
				t.Fatal("sealed to an unusable key")
			}
		})
	}
}

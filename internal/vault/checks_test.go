package vault

import (
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
)

func TestCheckGroup(t *testing.T) {
	for g, ok := range map[string]bool{
		"bank":                   true,
		"nóminas":                true,
		"payroll-2026_a.b":       true,
		"bank/santander":         false, // a grant on group:bank/santander would match nothing
		"ops:prod":               false,
		"group:bank":             false,
		"..":                     false,
		".":                      false,
		"b\u0430nk":              false, // Cyrillic а in a Latin word
		"ｂａｎｋ":                   false,
		"bank\x1b[2J":            false,
		"bank\u202e":             false,
		strings.Repeat("g", 128): true,
		strings.Repeat("g", 129): false,
	} {
		err := checkGroup(g)
		if fe, isFault := fault.As(err); ok && err != nil || !ok && (!isFault || fe.Code != "invalid_group") {
			t.Errorf("checkGroup(%q) = %v, want ok %v (else invalid_group)", g, err, ok)
		}
	}
}

func TestCheckMetadata(t *testing.T) {
	// What was stored before the limits: too long, several lines.
	old := &store.Credential{Group: "a:b", Institution: strings.Repeat("i", 300), LoginID: "x\ny", Notes: strings.Repeat("n", 5000),
		Labels: map[string]string{"": "empty key"}}
	for _, c := range []struct {
		name    string
		cred    *store.Credential
		created bool
		in      PutInput
		code    string
	}{
		{"ok/one line each", &store.Credential{}, true, PutInput{Institution: "Banco Santander", LoginID: "B12345678", Group: "bank"}, ""},
		{"ok/notes with lines and tabs", &store.Credential{}, true, PutInput{Notes: "call first\n\tdesk 2\r\n"}, ""},
		{"ok/notes at the limit", &store.Credential{}, true, PutInput{Notes: strings.Repeat("n", maxNotesBytes)}, ""},
		{"ok/stored values sent back unchanged", old, false, PutInput{Institution: old.Institution, LoginID: old.LoginID, Notes: old.Notes,
			Group: old.Group, Labels: map[string]string{"": "empty key"}}, ""},
		{"fail/institution too long", &store.Credential{}, true, PutInput{Institution: strings.Repeat("i", maxLineBytes+1)}, "invalid_institution"},
		{"fail/institution on two lines", old, false, PutInput{Institution: "Santander\nforged: line"}, "invalid_institution"},
		{"fail/login with an escape", &store.Credential{}, false, PutInput{LoginID: "B1\x1b]0;pwned\a"}, "invalid_login_id"},
		{"fail/login with a bidi override", &store.Credential{}, false, PutInput{LoginID: "B1\u202e"}, "invalid_login_id"},
		{"fail/login not UTF-8", &store.Credential{}, false, PutInput{LoginID: "B1\xff"}, "invalid_login_id"},
		{"fail/notes too long", &store.Credential{}, true, PutInput{Notes: strings.Repeat("n", maxNotesBytes+1)}, "invalid_notes"},
		{"fail/notes with an escape", old, false, PutInput{Notes: "see \x1b[2J"}, "invalid_notes"},
		{"fail/group with a slash", &store.Credential{}, true, PutInput{Group: "bank/x"}, "invalid_group"},
		{"fail/group with a colon, changed", &store.Credential{Group: "bank"}, false, PutInput{Group: "a:b"}, "invalid_group"},
		{"fail/new group given as the stored one on create", &store.Credential{Group: "a:b"}, true, PutInput{Group: "a:b"}, "invalid_group"},
		{"fail/labels with an empty key", &store.Credential{}, false, PutInput{Labels: map[string]string{"": "x"}}, "invalid_labels"},
		{"fail/labels changed", old, false, PutInput{Labels: map[string]string{"k": strings.Repeat("v", 513)}}, "invalid_labels"},
		{"ok/stored label on two lines sent back unchanged", &store.Credential{Labels: map[string]string{"team": "a\nb"}}, false,
			PutInput{Labels: map[string]string{"team": "a\nb"}}, ""},
		{"ok/label with spaces and accents", &store.Credential{}, true, PutInput{Labels: map[string]string{"équipe": "nóminas y IVA"}}, ""},
		{"fail/label value on two lines", &store.Credential{}, true, PutInput{Labels: map[string]string{"team": "payroll\nforged: line"}},
			"invalid_labels"},
		{"fail/label value with an escape", old, false, PutInput{Labels: map[string]string{"team": "ops\x1b[2J"}}, "invalid_labels"},
		{"fail/label key with a tab", &store.Credential{}, true, PutInput{Labels: map[string]string{"te\tam": "ops"}}, "invalid_labels"},
		{"fail/label key with a bidi override", &store.Credential{}, true, PutInput{Labels: map[string]string{"team\u202e": "ops"}},
			"invalid_labels"},
		{"fail/label value not UTF-8", &store.Credential{}, true, PutInput{Labels: map[string]string{"team": "ops\xff"}}, "invalid_labels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkMetadata(c.cred, c.created, c.in)
			fe, _ := fault.As(err)
			if c.code == "" && err != nil || c.code != "" && (fe == nil || fe.Code != c.code) {
				t.Errorf("checkMetadata = %v, want code %q", err, c.code)
			}
		})
	}
}

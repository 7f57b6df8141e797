package vault

import (
	"testing"

	"github.com/custodia-project/custodia/internal/fault"
)

func TestCheckNewName(t *testing.T) {
	for name, code := range map[string]string{
		"bank/santander/main":     "",
		"podatki/urząd-skarbowy":  "", // Polish letters are Latin
		"banco/señor.ñ":           "",
		"банк/сбер":               "", // Cyrillic throughout is one script
		"bank/ελλάδα/main":        "",
		"銀行/みずほ":                  "",
		"bank/s\u0430ntander":     "mixed_script_name", // Cyrillic а in a Latin word
		"bank/\u03bfne":           "mixed_script_name", // Greek ο
		"ｂａｎｋ/main":               "invalid_name",      // full-width letters
		"bank/\ufb01nance":        "invalid_name",      // the ligature ﬁ
		"bank/main\u00b2":         "invalid_name",      // superscript two
		"bank/santander/s\u0430n": "mixed_script_name",
	} {
		err := checkNewName(name)
		got := ""
		if fe, ok := fault.As(err); ok {
			got = fe.Code
		}
		if code == "" && err != nil || code != "" && got != code {
			t.Errorf("checkNewName(%q) = %v, want code %q", name, err, code)
		}
	}
}

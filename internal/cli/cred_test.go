package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/api"
	cv "github.com/custodia-project/custodia/internal/vault"
)

// cred history says which versions are deleted or destroyed (through /v1,
// which keeps them listed), not only which is current.
func TestVersionRows(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	l := &api.VersionList{Versions: []cv.Version{
		{Version: 1, Fields: []string{"password"}, CreatedBy: "mem_a", CreatedAt: at, DeletedAt: at, DestroyedAt: at.Add(time.Hour)},
		{Version: 2, Fields: []string{"password", "pin"}, CreatedBy: "mem_a", CreatedAt: at},
		{Version: 3, Fields: []string{"password"}, CreatedBy: "mem_b", CreatedAt: at, DeletedAt: at.Add(2 * time.Hour), Current: true},
	}}
	var got []string
	versionRows(l, func(id string) string { return id }, func(cells ...string) { got = append(got, strings.Join(cells, "|")) })
	want := []string{
		"1|password|mem_a|2026-11-22T09:00:00Z|destroyed 2026-11-22T10:00:00Z",
		"2|password,pin|mem_a|2026-11-22T09:00:00Z|",
		"3|password|mem_b|2026-11-22T09:00:00Z|current, deleted 2026-11-22T11:00:00Z",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Values someone else chose reach the terminal without what would steer
// it: a robot's purpose with an OSC title and a screen clear, a subject
// with a colour, a name with a right-to-left override.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"nightly run":                      "nightly run",
		"Gestoría Pérez, S.L.":             "Gestoría Pérez, S.L.",
		"nightly\x1b]0;pwned\a\x1b[2J run": `nightly\x1b]0;pwned\a\x1b[2J run`,
		"CN=\x1b[31mACME":                  `CN=\x1b[31mACME`,
		"bank/\u202etxt.exe":               `bank/\u202etxt.exe`,
		"a\tb\r\nc":                        `a\tb\r\nc`,
		"\u009b31m":                        `\u009b31m`,
		"bad\xffbyte":                      `bad\ufffdbyte`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

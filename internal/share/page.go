package share

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"sync"
)

//go:embed page.html
var pageHTML []byte

var page = sync.OnceValues(func() ([]byte, string) {
	script := between(pageHTML, "<script>", "</script>")
	style := between(pageHTML, "<style>", "</style>")
	if script == nil || style == nil {
		panic("share: page.html lacks its inline script or style")
	}
	// Only this page's own inline script and style run; it talks to its
	// own origin only, loads nothing, and cannot be framed or submit forms.
	csp := "default-src 'none'; script-src " + hashSource(script) + "; style-src " + hashSource(style) +
		"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return pageHTML, csp
})

// Page returns the browser page that opens share links (served at
// /s/{id}) and the Content-Security-Policy that admits exactly its inline
// script and style.
func Page() (html []byte, csp string) { return page() }

// PageScript returns the page's script, for tests that run it.
func PageScript() []byte { return between(pageHTML, "<script>", "</script>") }

func between(b []byte, open, close string) []byte {
	_, rest, ok := bytes.Cut(b, []byte(open))
	if !ok {
		return nil
	}
	in, _, ok := bytes.Cut(rest, []byte(close))
	if !ok {
		return nil
	}
	return in
}

func hashSource(b []byte) string {
	h := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
}

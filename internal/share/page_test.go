package share

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The page's JavaScript opens what the Go code seals: the page's own
// script (as served) runs under Node's WebCrypto on shares made here.
func TestPageScriptOpensGoShares(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if testing.Short() && os.Getenv("CI") != "true" {
			t.Skip("node is not installed (-short, outside CI)")
		}
		t.Fatal("node is not installed: the browser page's crypto is tested with Node's WebCrypto")
	}
	type jsKDF struct {
		Salt       []byte `json:"salt"`
		Iterations int    `json:"iterations"`
	}
	type jsCase struct {
		Fragment   string `json:"fragment"`
		Passphrase string `json:"passphrase"`
		Wrong      string `json:"wrong"`
		KDF        *jsKDF `json:"kdf"`
		Envelope   []byte `json:"envelope"`
		Auth       []byte `json:"auth"`
	}
	secrets := []struct{ text, pass string }{
		{"Zq8-page-secret", ""},
		{"línea uno\nlínea dos: ñ€😀", "contrase\u00f1a segura"},
		// Typed decomposed here; the page normalizes to NFC as Go does.
		{"user: ana\npassword: x7!Qm", "contrasen\u0303a segura"},
		{strings.Repeat("0123456789abcdef", MaxPlaintext/16), "long secret"},
	}
	var cases []jsCase
	for _, s := range secrets {
		p, err := Prepare([]byte(s.text), s.pass, MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := Derive(p.LinkKey, s.pass, p.KDF)
		link := (&Link{Base: "https://h", ID: "shr_abcdefghijklmnopqrst", Key: p.LinkKey}).String()
		c := jsCase{Fragment: link[strings.Index(link, "#")+1:], Passphrase: s.pass, Envelope: p.Envelope, Auth: k.Auth()}
		if p.KDF != nil {
			c.KDF = &jsKDF{Salt: p.KDF.Salt, Iterations: p.KDF.Iterations}
			c.Wrong = s.pass + "x"
		}
		cases = append(cases, c)
	}
	dir := t.TempDir()
	in, _ := json.Marshal(cases)
	if err := os.WriteFile(filepath.Join(dir, "cases.json"), in, 0o600); err != nil {
		t.Fatal(err)
	}
	harness := `
const cases = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
(async () => {
  const out = [];
  for (const c of cases) {
    const kdf = c.kdf ? { salt: b64Decode(c.kdf.salt), iterations: c.kdf.iterations } : null;
    const keys = await deriveKeys(b64urlDecode(c.fragment), c.passphrase, kdf);
    if (b64Encode(keys.auth) !== c.auth) throw new Error("auth key differs from Go's");
    const pt = await openEnvelope(keys.enc, b64Decode(c.envelope));
    let wrongOpened = false;
    if (c.wrong) {
      const bad = await deriveKeys(b64urlDecode(c.fragment), c.wrong, kdf);
      if (b64Encode(bad.auth) === c.auth) throw new Error("a wrong passphrase gives the same auth key");
      try { await openEnvelope(bad.enc, b64Decode(c.envelope)); wrongOpened = true; } catch (e) {}
    }
    out.push({ plaintext: new TextDecoder().decode(pt), wrong_opened: wrongOpened });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
`
	script := filepath.Join(dir, "run.js")
	if err := os.WriteFile(script, append(PageScript(), harness...), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, script, filepath.Join(dir, "cases.json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	var got []struct {
		Plaintext   string `json:"plaintext"`
		WrongOpened bool   `json:"wrong_opened"`
	}
	if err := json.Unmarshal(outb, &got); err != nil || len(got) != len(secrets) {
		t.Fatalf("node answered %q: %v", outb, err)
	}
	for i, s := range secrets {
		if got[i].Plaintext != s.text {
			t.Errorf("case %d: the page decrypted %q, want %q", i, got[i].Plaintext, s.text)
		}
		if got[i].WrongOpened {
			t.Errorf("case %d: the page opened the envelope with a wrong passphrase", i)
		}
	}
}

// The page loads nothing from elsewhere, runs no inline handlers (the CSP
// would block them) and never writes text as HTML; the CSP admits exactly
// its inline script and style.
func TestPageIsSelfContained(t *testing.T) {
	html, csp := Page()
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script[^>]*\ssrc=`), regexp.MustCompile(`(?i)<link\s`), regexp.MustCompile(`(?i)\son[a-z]+\s*=\s*["']`),
		regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`),
		regexp.MustCompile(`https?://`), regexp.MustCompile(`(?i)<(img|iframe|form|object|embed)\b`),
	} {
		if loc := bad.FindIndex(html); loc != nil {
			t.Errorf("page.html has %q", html[loc[0]:loc[1]])
		}
	}
	if n := bytes.Count(html, []byte("<script")); n != 1 {
		t.Errorf("page.html has %d scripts, want 1", n)
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	m := regexp.MustCompile(`script-src 'sha256-([^']+)'`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("CSP admits no script by hash: %s", csp)
	}
	if h, _ := base64.StdEncoding.DecodeString(m[1]); len(h) != 32 {
		t.Fatalf("script hash %q", m[1])
	}
	if hashSource(PageScript()) != "'sha256-"+m[1]+"'" {
		t.Error("the CSP's script hash is not the page's script")
	}
}

package secretcheck

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/custodia-project/custodia/internal/fault"
)

// CodeSecondFactorRefused is the stable code of every refusal by
// [SecondFactor] and [SecondFactors], for clients and scripts to match.
const CodeSecondFactorRefused = "second_factor_refused"

// Kind says what a refused value looked like.
type Kind string

const (
	// CoordinateCard is a bank's coordinate, positional or code card
	// (tarjeta de coordenadas, karta kodów, karta zdrapka, TAN list).
	CoordinateCard Kind = "coordinate_card"
	// OneTimeCode is an authenticator app's seed (otpauth:// URI, base32 or
	// hex secret) or a one-time code itself.
	OneTimeCode Kind = "one_time_code"
	// OneTimeCodeList is a list of one-time codes: backup or recovery codes,
	// a printed list of codes.
	OneTimeCodeList Kind = "one_time_code_list"
	// TokenSerial is a hardware token's serial number.
	TokenSerial Kind = "token_serial"
)

// SecondFactorError is the detail of a refusal. It is the cause (Err) of the
// *fault.Error that SecondFactor returns, so callers reach it with errors.As
// and the API renders the fault's code and message. It names the field,
// never the value.
type SecondFactorError struct {
	Field string // as given by the caller; "notes" for SecondFactors' notes
	Kind  Kind
}

func (e *SecondFactorError) Error() string {
	return "secretcheck: refused " + string(e.Kind) + " in field " + strconv.Quote(shortField(e.Field))
}

// NotesField is the field name SecondFactors reports for the notes.
const NotesField = "notes"

// SecondFactor returns nil if value, stored under the field name field, does
// not look like a second factor. Otherwise it returns a *fault.Error of kind
// fault.Invalid with code [CodeSecondFactorRefused], a message safe to show
// that explains why Custodia refuses it, and a *[SecondFactorError] as its
// cause. The same inputs always give the same answer.
func SecondFactor(field, value string) error {
	if k, ok := detect(field, value); ok {
		return refuse(field, k)
	}
	return nil
}

// SecondFactors checks each of a credential's secret fields and then its
// notes, and returns the first refusal in the order of field names (notes
// last), so the same credential always gives the same error.
func SecondFactors(fields map[string]string, notes string) error {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if err := SecondFactor(name, fields[name]); err != nil {
			return err
		}
	}
	return SecondFactor(NotesField, notes)
}

func refuse(field string, k Kind) error {
	return &fault.Error{
		Kind:    fault.Invalid,
		Code:    CodeSecondFactorRefused,
		Message: message(field, k),
		Err:     &SecondFactorError{Field: field, Kind: k},
	}
}

const why = "Custodia never stores a second factor, so that someone who steals the vault still cannot move money."

func message(field string, k Kind) string {
	what := "This value"
	if f := shortField(field); f != "" {
		what = "The field " + strconv.Quote(f)
	}
	switch k {
	case CoordinateCard:
		return what + " looks like a coordinate or code card (tarjeta de coordenadas, karta kodów). " + why +
			" Keep the card with the person who approves payments and store only the login and password here."
	case OneTimeCodeList:
		return what + " looks like a list of one-time or backup codes. " + why +
			" Keep the codes with the person who approves payments and store only the login and password here."
	case TokenSerial:
		return what + " looks like the serial number of a hardware token. " + why +
			" Keep the token, and anything that identifies it, with the person who approves payments."
	default:
		return what + " looks like a one-time code or the secret behind an authenticator app (TOTP). " + why +
			" Keep the app on the phone of the person who approves payments and store only the login and password here."
	}
}

// shortField bounds what of a caller's field name reaches a message.
func shortField(f string) string {
	f = strings.ToValidUTF8(strings.TrimSpace(f), "")
	if utf8.RuneCountInString(f) > 40 {
		f = string([]rune(f)[:40]) + "…"
	}
	return f
}

// detect is the whole decision; see the package documentation for the rules.
func detect(field, value string) (Kind, bool) {
	if hasOTPAuth(value) {
		return OneTimeCode, true
	}
	for _, k := range nameKinds(field) {
		if evidence(k, value) {
			return k, true
		}
	}
	if k, ok := labelled(value); ok {
		return k, true
	}
	return shape(value)
}

func hasOTPAuth(v string) bool {
	const scheme = "otpauth"
	for i := 0; i+len(scheme) < len(v); i++ {
		if (v[i] == 'o' || v[i] == 'O') && strings.EqualFold(v[i:i+len(scheme)], scheme) {
			rest := v[i+len(scheme):]
			const migration = "-migration:"
			if rest[0] == ':' || len(rest) >= len(migration) && strings.EqualFold(rest[:len(migration)], migration) {
				return true
			}
		}
	}
	return false
}

// evidence reports whether value has the shape a field named for kind k would
// have if it really held that second factor. The name alone is not enough:
// "2FA: SMS to Ana's phone" or "coordinate card: in the safe, box 2" are
// notes about a second factor, not the factor.
func evidence(k Kind, v string) bool {
	switch k {
	case CoordinateCard:
		return digitCount(v) >= 6 || shortCode(v)
	case OneTimeCodeList:
		return digitCount(v) >= 6 || shortCode(v) || hasMixedToken(v, 8)
	case TokenSerial:
		return digitCount(v) >= 6 || serialLike(v)
	case OneTimeCode:
		return seedLike(v) || shortCode(v) || hasDigitRun(v, 6, 8)
	}
	return false
}

// labelled applies the field-name rules to "label: value" lines inside a
// value, and to a short heading line ("Karta kodów") followed by lines of
// codes. A heading's block runs to the next blank line, the next heading, or
// 50 lines, so blocks never overlap and the scan stays linear.
func labelled(v string) (Kind, bool) {
	if !strings.ContainsAny(v, ":=\n") {
		return "", false
	}
	lines := strings.Split(v, "\n")
	for i := 0; i < len(lines); i++ {
		kinds, rest := lineLabel(lines[i])
		if len(kinds) == 0 {
			continue
		}
		if strings.TrimSpace(rest) == "" {
			var b strings.Builder
			for j := i + 1; j < len(lines) && j <= i+50; j++ {
				if strings.TrimSpace(lines[j]) == "" {
					break
				}
				if k, _ := lineLabel(lines[j]); len(k) > 0 {
					break
				}
				b.WriteString(lines[j])
				b.WriteByte('\n')
			}
			rest = b.String()
		}
		for _, k := range kinds {
			if evidence(k, rest) {
				return k, true
			}
		}
	}
	return "", false
}

// lineLabel returns the second-factor kinds a line's label names, and what
// follows the label. A label is text of up to 40 characters before ':' or
// '=', or a whole line of at most three words.
func lineLabel(line string) ([]Kind, string) {
	line = strings.TrimSpace(line)
	if i := strings.IndexAny(line, ":="); i > 0 {
		label := line[:i]
		if utf8.RuneCountInString(label) <= 40 {
			return nameKinds(label), line[i+1:]
		}
		return nil, ""
	}
	if utf8.RuneCountInString(line) > 40 || len(nameWords(line)) > 3 {
		return nil, ""
	}
	return nameKinds(line), ""
}

// shape applies the rules that need no name: card grids and code lists.
func shape(v string) (Kind, bool) {
	if k, ok := pairs(v); ok {
		return k, true
	}
	if codeList(v) {
		return OneTimeCodeList, true
	}
	if gridTable(v) {
		return CoordinateCard, true
	}
	return "", false
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }

func digitCount(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		if isDigit(v[i]) {
			n++
		}
	}
	return n
}

// compact drops the separators people put inside codes and serials.
func compact(v string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '-', '.', '/':
			return -1
		}
		return r
	}, strings.TrimSpace(v))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// shortCode: the whole value is one code of 4 to 8 digits ("123 456").
func shortCode(v string) bool {
	c := compact(v)
	return len(c) >= 4 && len(c) <= 8 && allDigits(c)
}

// serialLike: the whole value is 5 to 24 letters and digits, at least three
// of them digits ("GAKT-0012", "SN 12345").
func serialLike(v string) bool {
	c := compact(v)
	if len(c) < 5 || len(c) > 24 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isAlnum(c[i]) {
			return false
		}
	}
	return digitCount(c) >= 3
}

// asciiTokens splits v into runs of ASCII letters and digits.
func asciiTokens(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r >= utf8.RuneSelf || !isAlnum(byte(r)) })
}

// hasDigitRun: a run of min to max digits not touching another digit.
func hasDigitRun(v string, min, max int) bool {
	for i := 0; i < len(v); {
		if !isDigit(v[i]) {
			i++
			continue
		}
		j := i
		for j < len(v) && isDigit(v[j]) {
			j++
		}
		if n := j - i; n >= min && n <= max {
			return true
		}
		i = j
	}
	return false
}

// hasMixedToken: a token of at least n letters and digits, with both.
func hasMixedToken(v string, n int) bool {
	for _, t := range asciiTokens(v) {
		if len(t) >= n {
			d := digitCount(t)
			if d > 0 && d < len(t) {
				return true
			}
		}
	}
	return false
}

// seedLike: the whole value is a TOTP/HOTP secret: base32 of 16 to 64
// characters (padding and case ignored) or hex of 32 to 128, written in one
// piece or in groups of equal length ("jbsw y3dp ehpk 3pxp"). Groups of
// unequal length are words, such as a wallet's recovery phrase.
func seedLike(v string) bool {
	groups := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '-' || r == '\r' || r == '\n' })
	if len(groups) == 0 {
		return false
	}
	if len(groups) > 1 {
		n := len(groups[0])
		if n < 3 {
			return false
		}
		for i, g := range groups {
			if len(g) > n || (len(g) < n && i < len(groups)-1) {
				return false
			}
		}
	}
	s := strings.TrimRight(strings.Join(groups, ""), "=")
	if b32 := len(s) >= 16 && len(s) <= 64 && strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '2' <= r && r <= '7')
	}) < 0; b32 {
		return true
	}
	return len(s) >= 32 && len(s) <= 128 && len(s)%2 == 0 && strings.IndexFunc(s, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
	}) < 0
}

// pairs finds card cells written as label and code: "A1 23", "1B: 456",
// and numbered codes with explicit punctuation: "1: 1234", "2) 5678",
// "3. 482913". It counts distinct labels whose codes have one length, as
// every cell of one card does, which keeps opening hours ("9:00"), amounts
// ("1.500") and account numbers out; and it refuses eight such cells, or four
// that make up two thirds of the words, so that "B1 23 people, B2 45 people"
// in a note is not a card.
func pairs(v string) (Kind, bool) {
	type group struct {
		numbered bool
		codeLen  int
	}
	labels := make(map[group]map[string]bool)
	for _, p := range scanPairs(v) {
		g := group{p.numbered, len(p.code)}
		if labels[g] == nil {
			labels[g] = make(map[string]bool)
		}
		labels[g][strings.ToLower(p.label)] = true
	}
	best, bestKind := 0, CoordinateCard
	for g, set := range labels {
		n := len(set)
		k := CoordinateCard
		if g.numbered && g.codeLen >= 6 {
			k = OneTimeCodeList
		}
		// Map order is random; break ties by kind so the answer is stable.
		if n > best || (n == best && k < bestKind) {
			best, bestKind = n, k
		}
	}
	if pairWords := 2 * best; best >= 8 || best >= 4 && 3*pairWords >= 2*len(asciiTokens(v)) {
		return bestKind, true
	}
	return "", false
}

type pair struct {
	label, code string
	numbered    bool
}

// scanPairs scans ASCII words for what these patterns would match:
//
//	letter label: \b([a-z][0-9]{1,2}|[0-9]{1,2}[a-z])\s*[:=-]?\s*([0-9]{2,4})\b
//	numbered:     \b([0-9]{1,3})\s*([:=)]|\.\s)\s*([0-9]{4,8})\b
//
// (a numbered label needs its punctuation). It is one pass over the value.
func scanPairs(v string) []pair {
	var out []pair
	i := 0
	for i < len(v) {
		if !isAlnum(v[i]) {
			i++
			continue
		}
		// A word: a maximal run of letters and digits.
		j := i
		for j < len(v) && isAlnum(v[j]) {
			j++
		}
		w := v[i:j]
		if p, end, ok := pairAt(v, w, j); ok {
			out = append(out, p)
			i = end
			continue
		}
		i = j
	}
	return out
}

func pairAt(v, w string, j int) (pair, int, bool) {
	letterLabel := len(w) >= 2 && len(w) <= 3 &&
		(isLetter(w[0]) && allDigits(w[1:]) || isLetter(w[len(w)-1]) && allDigits(w[:len(w)-1]))
	numLabel := len(w) <= 3 && allDigits(w)
	if !letterLabel && !numLabel {
		return pair{}, 0, false
	}
	k := skipSpace(v, j)
	sep := false
	switch {
	case k < len(v) && (v[k] == ':' || v[k] == '='):
		sep = true
		k++
	case k < len(v) && v[k] == ')' && numLabel:
		sep = true
		k++
	case k < len(v) && v[k] == '-' && letterLabel:
		sep = true
		k++
	case k+1 < len(v) && v[k] == '.' && (v[k+1] == ' ' || v[k+1] == '\t') && numLabel:
		sep = true
		k++
	}
	if numLabel && !sep {
		return pair{}, 0, false
	}
	k = skipSpace(v, k)
	e := k
	for e < len(v) && isAlnum(v[e]) {
		e++
	}
	code := v[k:e]
	if !allDigits(code) {
		return pair{}, 0, false
	}
	if letterLabel && len(code) >= 2 && len(code) <= 4 {
		return pair{label: w, code: code}, e, true
	}
	// Numbered codes of fewer than 4 digits are quantities more often
	// than cards ("1: 120 units").
	if numLabel && len(code) >= 4 && len(code) <= 8 {
		return pair{label: w, code: code, numbered: true}, e, true
	}
	return pair{}, 0, false
}

func skipSpace(v string, k int) int {
	for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
		k++
	}
	return k
}

// codeList finds at least five distinct codes of 6 to 8 digits that make up
// most of the value: one per line or comma ("1234 5678" counts as one), or
// separated by spaces, and that look random. Five, because a credential's
// notes may well hold a client number or two, but not five of them and
// little else.
func codeList(v string) bool {
	itemCodes := make(map[string]bool)
	items, codeItems := 0, 0
	for _, it := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == ',' || r == ';' }) {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		items++
		c := compact(stripNumbering(it))
		if len(c) >= 6 && len(c) <= 8 && allDigits(c) {
			codeItems++
			itemCodes[c] = true
		}
	}
	if len(itemCodes) >= 5 && codeItems*5 >= items*3 && random(itemCodes) {
		return true
	}
	tokCodes := make(map[string]bool)
	toks, codeToks := 0, 0
	for _, t := range asciiTokens(v) {
		if allDigits(t) && len(t) <= 3 {
			continue // numbering
		}
		toks++
		if allDigits(t) && len(t) >= 6 && len(t) <= 8 {
			codeToks++
			tokCodes[t] = true
		}
	}
	return len(tokCodes) >= 5 && codeToks*2 >= toks && random(tokCodes)
}

// random reports whether codes look drawn at random rather than issued in
// order: four in five have a 3-digit prefix of their own. Invoice numbers
// (2024001, 2024002, ...) and dates share prefixes; five random 6-digit
// codes share one with a chance of about 1%, and two with far less.
func random(codes map[string]bool) bool {
	prefixes := make(map[string]bool, len(codes))
	for c := range codes {
		prefixes[c[:3]] = true
	}
	return len(prefixes)*5 >= len(codes)*4
}

// stripNumbering drops a leading "1.", "2)", "#3:" or "04 -".
func stripNumbering(s string) string {
	i := 0
	if i < len(s) && s[i] == '#' {
		i++
	}
	d := i
	for i < len(s) && isDigit(s[i]) && i-d < 3 {
		i++
	}
	if i == d {
		return s
	}
	k := skipSpace(s, i)
	if k < len(s) && strings.IndexByte(".):=-", s[k]) >= 0 {
		return s[k+1:]
	}
	return s
}

// gridTable finds a card copied as a table: a header of column letters and
// rows of cells. At least twelve cells of one length (2-4 digits), at least
// three letter labels, and labels and numbers making up 80% of the words.
func gridTable(v string) bool {
	cells := make(map[int]int)
	singles := make(map[byte]bool)
	total, numeric, labels, letterDigit := 0, 0, 0, 0
	for _, t := range asciiTokens(v) {
		total++
		switch {
		case allDigits(t) && len(t) <= 4:
			numeric++
			if len(t) >= 2 {
				cells[len(t)]++
			}
		case len(t) == 1:
			singles[t[0]|0x20] = true
			labels++
		case len(t) <= 3 && (isLetter(t[0]) && allDigits(t[1:]) || isLetter(t[len(t)-1]) && allDigits(t[:len(t)-1])):
			letterDigit++
			labels++
		}
	}
	most := 0
	for _, n := range cells {
		most = max(most, n)
	}
	return most >= 12 && (len(singles) >= 3 || letterDigit >= 3) && (numeric+labels)*5 >= total*4
}

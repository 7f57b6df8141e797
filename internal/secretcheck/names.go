package secretcheck

import (
	"strings"
	"unicode"
)

// A nameRule matches a field name when every group has a word among the
// name's words; a word ending in '*' matches as a prefix, so one entry covers
// Polish and Spanish inflections ("kod*": kod, kody, kodów).
type nameRule struct {
	kind Kind
	all  [][]string
}

// nameRules are the field names that announce a second factor, in English,
// Spanish and Polish, after lowercasing, dropping accents and stop words
// ("Número de serie del token" is "numero serie token"). They are deliberately
// narrow: "token" alone is an API token, "serial" alone a licence key,
// "PIN" a bank's login PIN, "coordinator" a person, all legitimate.
var nameRules = []nameRule{
	{CoordinateCard, [][]string{{"coordinates", "coordinate", "coord", "coords", "coordenadas", "coordenada", "wspolrzedne"}}},
	{CoordinateCard, [][]string{{"karta"}, {"kod*", "zdrapk*", "hasel", "tan*"}}},
	{CoordinateCard, [][]string{{"zdrapk*"}}},
	{CoordinateCard, [][]string{{"tans", "itan", "itans"}}},
	{CoordinateCard, [][]string{{"tan"}, {"list*", "karta", "card*", "tarjeta*", "code*", "codigo*", "kod*"}}},
	{CoordinateCard, [][]string{{"grid", "matrix", "positional", "posicional*"}, {"card*", "tarjeta*", "karta"}}},

	{OneTimeCodeList, [][]string{{"backup", "recovery", "scratch", "respaldo", "recuperacion", "emergencia", "zapasow*", "odzyskiw*", "awaryjn*", "rezerwow*"}, {"code*", "codigo*", "kod*"}}},
	{OneTimeCodeList, [][]string{{"jednorazow*"}}},

	{TokenSerial, [][]string{{"token*"}, {"serial*", "serie*", "seryjn*", "numer*", "numero*", "num", "no", "nr", "n", "sn"}}},
	{TokenSerial, [][]string{{"token*"}, {"hardware", "fisico", "sprzetow*", "rsa"}}},
	{TokenSerial, [][]string{{"digipass*", "securid*"}}},

	{OneTimeCode, [][]string{{"otp*", "totp*", "hotp*", "2fa*", "mfa*", "2sv", "otc", "seed*", "semilla*", "authenticator*", "autenticador*", "dwuskladnik*", "dwuetapow*", "onetime*"}}},
	{OneTimeCode, [][]string{{"two", "2", "second", "segundo", "doble", "double", "dual"}, {"factor*", "fa", "step*"}}},
	// Chile and Spain: "segunda clave", "clave dinámica" (a token's code).
	{OneTimeCode, [][]string{{"segunda", "segundas"}, {"clave*"}}},
	{OneTimeCode, [][]string{{"clave*"}, {"dinamica*"}}},
	{OneTimeCode, [][]string{{"one"}, {"time"}}},
	{OneTimeCode, [][]string{{"solo", "unico"}, {"uso"}}},
	{OneTimeCode, [][]string{{"sms", "verification", "verificacion", "weryfikac*", "weryfikuj*", "autoryzac*", "autorizacion", "confirmation", "confirmacion"}, {"code*", "codigo*", "kod*"}}},
}

// squashed catches names written without separators or case
// ("tokenserial", "kartakodow"); only long, unambiguous stems are listed.
var squashed = []struct {
	stem string
	kind Kind
}{
	{"coordenada", CoordinateCard},
	{"coordinatecard", CoordinateCard},
	{"kartakod", CoordinateCard},
	{"zdrapk", CoordinateCard},
	{"backupcode", OneTimeCodeList},
	{"recoverycode", OneTimeCodeList},
	{"jednorazow", OneTimeCodeList},
	{"tokenserial", TokenSerial},
	{"serialtoken", TokenSerial},
	{"numertokena", TokenSerial},
	{"serietoken", TokenSerial},
	{"totp", OneTimeCode},
	{"hotp", OneTimeCode},
	{"otpseed", OneTimeCode},
	{"otpsecret", OneTimeCode},
	{"authenticator", OneTimeCode},
	{"autenticador", OneTimeCode},
	{"dwuskladnik", OneTimeCode},
}

var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "of": true, "for": true, "my": true,
	"de": true, "del": true, "la": true, "el": true, "los": true, "las": true, "y": true, "en": true, "mi": true, "su": true,
	"do": true, "dla": true, "z": true, "na": true, "i": true, "w": true,
}

// fold maps the accented letters of Spanish and Polish to ASCII.
var fold = map[rune]rune{
	'á': 'a', 'à': 'a', 'ä': 'a', 'â': 'a', 'ą': 'a', 'ª': 'a',
	'é': 'e', 'è': 'e', 'ë': 'e', 'ê': 'e', 'ę': 'e',
	'í': 'i', 'ì': 'i', 'ï': 'i', 'î': 'i',
	'ó': 'o', 'ò': 'o', 'ö': 'o', 'ô': 'o', 'º': 'o',
	'ú': 'u', 'ù': 'u', 'ü': 'u', 'û': 'u',
	'ñ': 'n', 'ń': 'n', 'ć': 'c', 'ç': 'c', 'ł': 'l', 'ś': 's', 'ź': 'z', 'ż': 'z',
}

// maxNameRunes bounds the work spent on one field name.
const maxNameRunes = 200

// nameWords splits a field name into lowercase ASCII-folded words at
// anything that is not a letter or digit and at camelCase boundaries
// ("TOTPSecret" is "totp secret"), and drops stop words.
func nameWords(name string) []string {
	runes := []rune(name)
	if len(runes) > maxNameRunes {
		runes = runes[:maxNameRunes]
	}
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			if w := string(cur); !stopWords[w] {
				words = append(words, w)
			}
			cur = cur[:0]
		}
	}
	for i, r := range runes {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if unicode.IsUpper(r) && i > 0 {
			prev := runes[i-1]
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			if unicode.IsLower(prev) || unicode.IsUpper(prev) && nextLower {
				flush()
			}
		}
		r = unicode.ToLower(r)
		if f, ok := fold[r]; ok {
			r = f
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// nameKinds returns, in a fixed order and without repeats, the kinds of
// second factor that a field name announces.
func nameKinds(name string) []Kind {
	words := nameWords(name)
	if len(words) == 0 {
		return nil
	}
	var out []Kind
	add := func(k Kind) {
		for _, o := range out {
			if o == k {
				return
			}
		}
		out = append(out, k)
	}
	// "tan" is also a common Spanish word ("so"), so alone it counts only as
	// the whole name.
	if len(words) == 1 && words[0] == "tan" {
		add(CoordinateCard)
	}
	for _, r := range nameRules {
		if r.matches(words) {
			add(r.kind)
		}
	}
	joined := strings.Join(words, "")
	for _, s := range squashed {
		if strings.Contains(joined, s.stem) {
			add(s.kind)
		}
	}
	return out
}

func (r nameRule) matches(words []string) bool {
	for _, group := range r.all {
		if !anyWord(words, group) {
			return false
		}
	}
	return true
}

func anyWord(words, alts []string) bool {
	for _, a := range alts {
		prefix, isPrefix := strings.CutSuffix(a, "*")
		for _, w := range words {
			if w == a || isPrefix && strings.HasPrefix(w, prefix) {
				return true
			}
		}
	}
	return false
}

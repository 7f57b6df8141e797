package secretcheck

import (
	"maps"
	"slices"
	"strings"
)

// Names of the built-in rules. They describe the rule, not an institution,
// because the same limits recur across banks and portals and change when a
// portal is rebuilt; a tenant maps its institutions to them, or passes its
// own Rule.
const (
	// RuleGeneric: 20 characters from letters, digits and DefaultSymbols,
	// about 128 bits; for any modern site.
	RuleGeneric = "generic"
	// RuleAlnum8to12: letters and digits, 8 to 12 characters (12 generated,
	// about 71 bits), no character twice in a row; the kind of limit older
	// online banking logins impose.
	RuleAlnum8to12 = "alnum-8-12"
	// RuleMixed8to16: letters, digits and PortalSymbols, 8 to 16 characters
	// (16 generated, about 98 bits), starting with a letter; portals that
	// require a symbol but refuse many of them.
	RuleMixed8to16 = "mixed-8-16"
	// RuleDigitsPin4to8: a numeric PIN of 4 to 8 digits (8 generated,
	// about 25 bits) with no repeated digit in a row and no run such as
	// "123"; banks whose login is a PIN. Set Length when the portal wants
	// exactly 4 or 6. A PIN is only as good as the portal's lockout.
	RuleDigitsPin4to8 = "digits-pin-4-8"
)

// Institution kinds of a credential, as the vault records them.
const (
	InstitutionBank      = "bank"
	InstitutionTaxPortal = "tax_portal"
	InstitutionPayroll   = "payroll"
	InstitutionInvoicing = "invoicing"
	InstitutionOther     = "other"
)

var builtinRules = map[string]Rule{
	RuleGeneric: {
		Name: RuleGeneric, Length: 20, MinLength: 12, MaxLength: 128,
		Lower: true, Upper: true, Digits: true, Symbols: true,
	},
	RuleAlnum8to12: {
		Name: RuleAlnum8to12, MinLength: 8, MaxLength: 12,
		Lower: true, Upper: true, Digits: true, NoRepeats: true,
	},
	RuleMixed8to16: {
		Name: RuleMixed8to16, MinLength: 8, MaxLength: 16,
		Lower: true, Upper: true, Digits: true, Symbols: true, Allowed: PortalSymbols,
		MustStartWithLetter: true, NoRepeats: true,
	},
	RuleDigitsPin4to8: {
		Name: RuleDigitsPin4to8, MinLength: 4, MaxLength: 8,
		Digits: true, NoRepeats: true, NoSequences: true,
	},
}

// kindRules is the default rule for each institution kind: the most
// restrictive common case for banks, whose portals are the oldest, and the
// generic rule where portals are usually modern.
var kindRules = map[string]string{
	InstitutionBank:      RuleAlnum8to12,
	InstitutionTaxPortal: RuleMixed8to16,
	InstitutionPayroll:   RuleMixed8to16,
	InstitutionInvoicing: RuleGeneric,
	InstitutionOther:     RuleGeneric,
}

// RuleFor returns the built-in Rule named by institution, which may be a rule
// name (RuleAlnum8to12, ...) or an institution kind (InstitutionBank, ...), case and
// '-' or '_' ignored for kinds. Anything else gets RuleGeneric: an unknown
// institution should get the strongest password, and a portal that refuses
// it tells the tenant to pick or write a rule.
func RuleFor(institution string) Rule {
	s := strings.ToLower(strings.TrimSpace(institution))
	if r, ok := builtinRules[s]; ok {
		return r
	}
	if name, ok := kindRules[strings.ReplaceAll(s, "-", "_")]; ok {
		return builtinRules[name]
	}
	return builtinRules[RuleGeneric]
}

// RuleNames lists the built-in rules, sorted.
func RuleNames() []string {
	return slices.Sorted(maps.Keys(builtinRules))
}

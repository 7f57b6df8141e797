package vault

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/custodia-project/custodia/internal/fault"
)

// confusableScripts are the scripts whose letters pass for each other: a
// Cyrillic "а" or a Greek "ο" looks like a Latin "a" or "o".
var confusableScripts = []struct {
	name  string
	table *unicode.RangeTable
}{{"Latin", unicode.Latin}, {"Greek", unicode.Greek}, {"Cyrillic", unicode.Cyrillic}}

// checkNewName refuses a new credential's name that could pass for
// another: one that Unicode's compatibility normalization (NFKC) would
// change (full-width letters, ligatures, superscript digits), or a
// segment mixing Latin, Greek and Cyrillic letters. Otherwise
// "bank/sаntander" with a Cyrillic "а" would stand beside the real
// "bank/santander" and look the same in every list, and a grant or a
// robot's path could be pointed at the wrong one. Names already stored
// keep working: only new ones are judged.
func checkNewName(name string) error {
	if nf := norm.NFKC.String(name); nf != name {
		return invalid("invalid_name", "name holds compatibility characters (full-width letters, ligatures and the like): write it as %q", nf)
	}
	for _, seg := range strings.Split(name, "/") {
		seen := ""
		for _, r := range seg {
			if !unicode.IsLetter(r) {
				continue
			}
			for _, sc := range confusableScripts {
				if !unicode.Is(sc.table, r) {
					continue
				}
				if seen != "" && seen != sc.name {
					return invalid("mixed_script_name", "name segment %q mixes %s and %s letters, which look alike (a Cyrillic \"а\" passes for a Latin \"a\"): write each segment in one script",
						seg, seen, sc.name)
				}
				seen = sc.name
			}
		}
	}
	return nil
}

// maxGroupLen bounds a group's name.
const maxGroupLen = 128

// checkGroup accepts a group given for a credential: one segment of a
// name (letters, digits, '.', '_', '-'; not . or ..), judged as a new
// name is (checkNewName). A grant names a group as group:NAME, so a '/'
// or ':' in it, or a look-alike of another group, would make grants that
// match another group or none. Groups already stored keep working: only
// a group being set is judged.
func checkGroup(g string) error {
	if len(g) > maxGroupLen || strings.Contains(g, "/") || checkName(g) != nil {
		return invalid("invalid_group", "group must be one segment of a name, like bank: 1 to %d letters, digits, '.', '_' or '-', not . or ..",
			maxGroupLen)
	}
	if err := checkNewName(g); err != nil {
		fe, _ := fault.As(err)
		return invalid("invalid_group", "group: %s", fe.Message)
	}
	return nil
}

package password

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"slices"
	"strings"
	"sync"
)

// commonGz is the list of common leaked passwords; see data/NOTICE.md for
// its source, licence and contents. It costs about 565 KB of binary and,
// once loaded, about 3.6 MB of heap (1.4 MB of text and a 16-byte string
// header for each of its 139,974 entries). It is loaded on the first Check,
// so processes that never check a new password never pay for it.
//
//go:embed data/common-passwords.txt.gz
var commonGz []byte

// commonList is the list, sorted, each entry a substring of one string.
var commonList = sync.OnceValue(func() []string {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		panic("password: embedded common password list: " + err.Error())
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		panic("password: embedded common password list: " + err.Error())
	}
	list := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	// The file is generated sorted; sorting again costs a few milliseconds
	// once and keeps binary search correct if it is ever edited by hand.
	if !slices.IsSorted(list) {
		slices.Sort(list)
	}
	return list
})

// Common reports whether password, ignoring case, is on the shipped list of
// passwords known from breaches. It is a lookup, without any estimate.
func Common(password string) bool {
	_, found := slices.BinarySearch(commonList(), strings.ToLower(password))
	return found
}

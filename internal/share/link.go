package share

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
)

// IDPrefix starts every share ID.
const IDPrefix = "shr_"

// ErrLink refuses a string that is not a share link.
var ErrLink = errors.New("share: not a share link (want https://host/s/shr_…#key)")

// ValidID reports whether id has the shape of a share ID: the prefix and
// 20 lowercase base32 characters (store.NewID).
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, IDPrefix)
	if !ok || len(rest) != 20 {
		return false
	}
	for _, c := range []byte(rest) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Link is a share link: where the share lives and the key that opens it.
// The key travels only in the fragment, which browsers never send.
type Link struct {
	// Base is the server's address, e.g. https://vault.example.com.
	Base string
	ID   string
	Key  []byte
}

// String is the link, key included: show it once, to the person sharing.
func (l *Link) String() string {
	return strings.TrimRight(l.Base, "/") + "/s/" + l.ID + "#" + base64.RawURLEncoding.EncodeToString(l.Key)
}

// ParseLink reads a share link. Only https links are accepted, with the
// key in the fragment; a query string is ignored.
func ParseLink(s string) (*Link, error) {
	s = strings.TrimSpace(s)
	if len(s) > 2048 {
		return nil, ErrLink
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, ErrLink
	}
	prefix, id, ok := cutLast(u.Path, "/s/")
	if !ok || !ValidID(id) {
		return nil, ErrLink
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(u.Fragment, "="))
	if err != nil || len(key) != KeySize {
		return nil, ErrLink
	}
	base := url.URL{Scheme: u.Scheme, Host: u.Host, Path: prefix}
	return &Link{Base: base.String(), ID: id, Key: key}, nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

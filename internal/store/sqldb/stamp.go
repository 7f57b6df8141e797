package sqldb

import "strings"

// Change stamps (SoleWriter engines). Every committed transaction that
// wrote a table outside stampExempt adds one to the DB's stamp before its
// callers return, so a value read from the database while the stamp was S
// is still current for as long as the stamp is S (store.Stamper). Which
// tables a transaction wrote is read off its statements' text, so no
// write method can forget to say so; a statement that is not plainly an
// INSERT, UPDATE or DELETE of a named table counts as a write to all.

// stampExempt are the append-only tables that no cached read depends on:
// a robot's fetch writes only these (and the audit log's signed
// checkpoints follow fetches), so fetches leave caches warm.
var stampExempt = map[string]bool{
	"audit_events":      true,
	"audit_hashes":      true,
	"audit_logs":        true,
	"audit_checkpoints": true,
	"leases":            true,
}

// noteWrite marks t dirty if q may change a table outside stampExempt.
// Reads (View) cannot, and are not looked at.
func (t *tx) noteWrite(q string) {
	if t.dirty || !t.write || !t.d.SoleWriter {
		return
	}
	t.dirty = writesStamped(q)
}

// writesStamped reports whether q may change a table outside stampExempt.
func writesStamped(q string) bool {
	q = strings.TrimLeft(q, " \t\r\n")
	word := func() string {
		i := strings.IndexAny(q, " \t\r\n(")
		if i < 0 {
			i = len(q)
		}
		w := q[:i]
		q = strings.TrimLeft(q[i:], " \t\r\n")
		return strings.ToUpper(w)
	}
	switch word() {
	case "SELECT", "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
		return false
	case "INSERT":
		if word() != "INTO" {
			return true
		}
	case "UPDATE":
	case "DELETE":
		if word() != "FROM" {
			return true
		}
	default:
		return true
	}
	return !stampExempt[strings.ToLower(word())]
}

// Stamp implements store.Stamper where the engine is the database's only
// writer (SoleWriter); elsewhere other processes write unseen, and ok is
// false.
func (db *DB) Stamp() (stamp uint64, ok bool) {
	if !db.dialect.SoleWriter {
		return 0, false
	}
	return db.stamp.Load(), true
}

// stampAfter adds one to the stamp if t wrote a stamped table. It runs
// after COMMIT whatever COMMIT returned (a failed commit may still have
// written), and before any caller of the transaction returns.
func (db *DB) stampAfter(t *tx) {
	if t.dirty {
		db.stamp.Add(1)
		t.dirty = false
	}
}

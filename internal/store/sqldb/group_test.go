package sqldb

import "testing"

// TestPickGroup: appends gather on the first writer until its batch is
// full; other calls spread over the other writers, spilling to the next
// at spillAt waiting calls, then to the least loaded.
func TestPickGroup(t *testing.T) {
	db := &DB{}
	db.EnableGroupCommit(3)
	wait := func(g, n int) { db.groups[g].pending = make([]*groupCall, n) }
	is := func(got *grouper, want int) {
		t.Helper()
		if got != db.groups[want] {
			for i, g := range db.groups {
				if g == got {
					t.Fatalf("picked writer %d, want %d", i, want)
				}
			}
		}
	}
	is(db.pickGroup(true), 0)
	is(db.pickGroup(false), 1)
	wait(0, spillAt*3)
	is(db.pickGroup(true), 0)
	wait(1, spillAt)
	is(db.pickGroup(false), 2)
	wait(2, spillAt+1)
	is(db.pickGroup(false), 1)
	wait(0, maxGroup)
	is(db.pickGroup(true), 1) // the first writer's batch is full
	wait(0, 0)
	wait(1, 40)
	wait(2, 40)
	is(db.pickGroup(false), 0) // every other writer is busier

	one := &DB{}
	one.EnableGroupCommit(1)
	if one.pickGroup(false) != one.groups[0] || one.pickGroup(true) != one.groups[0] {
		t.Fatal("a single writer was not picked")
	}
}

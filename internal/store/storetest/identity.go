package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testMembers(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	mkTenant(t, s, "t2")
	m := &store.Member{ID: "m1", TenantID: "t1", Email: "ana@example.com", Name: "Ana", Role: store.RoleOwner,
		Status: store.MemberActive, PasswordHash: "$argon2id$x", CreatedAt: t0, UpdatedAt: t0}
	update(t, s, func(tx store.Tx) error { return tx.InsertMember(ctx, m) })
	// The same email may exist in another tenant, not twice in one.
	update(t, s, func(tx store.Tx) error {
		return tx.InsertMember(ctx, &store.Member{ID: "m2", TenantID: "t2", Email: m.Email, Role: store.RoleMember, Status: store.MemberActive, CreatedAt: t0, UpdatedAt: t0})
	})
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertMember(ctx, &store.Member{ID: "m3", TenantID: "t1", Email: m.Email, Role: store.RoleMember, Status: store.MemberActive, CreatedAt: t0, UpdatedAt: t0})
	}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate email = %v, want ErrConflict", err)
	}
	m.MFA, m.FailedSignins, m.LockedUntil, m.UpdatedAt = true, 3, t0.Add(time.Minute), t0.Add(time.Second)
	update(t, s, func(tx store.Tx) error { return tx.UpdateMember(ctx, m) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetMemberByEmail(ctx, "t1", "ana@example.com")
		if err != nil || got.ID != "m1" || !got.MFA || got.FailedSignins != 3 || !got.LockedUntil.Equal(t0.Add(time.Minute)) || got.PasswordHash != m.PasswordHash {
			t.Errorf("GetMemberByEmail = %+v, %v", got, err)
		}
		if _, err := tx.GetMember(ctx, "t2", "m1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("member of another tenant = %v, want ErrNotFound", err)
		}
		if n, err := tx.CountOwners(ctx, "t1"); n != 1 || err != nil {
			t.Errorf("CountOwners = %d, %v", n, err)
		}
		if ms, err := tx.ListMembers(ctx, "t1"); len(ms) != 1 || err != nil {
			t.Errorf("ListMembers = %+v, %v", ms, err)
		}
		return nil
	})
	r := &store.Robot{ID: "rbt_1", TenantID: "t1", Name: "cassius", OwnerID: "m1", Status: store.RobotActive, CreatedAt: t0}
	update(t, s, func(tx store.Tx) error { return tx.InsertRobot(ctx, r) })
	r.Status, r.DisabledAt = store.RobotDisabled, t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.UpdateRobot(ctx, r) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetRobot(ctx, "t1", "cassius")
		if err != nil || got.ID != "rbt_1" || got.Status != store.RobotDisabled {
			t.Errorf("GetRobot by name = %+v, %v", got, err)
		}
		if _, err := tx.GetRobot(ctx, "t2", "rbt_1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("robot of another tenant = %v", err)
		}
		return nil
	})
}

func testTokensAndSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	tok := &store.APIToken{ID: "tok1", TenantID: "t1", SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Name: "ci",
		Hash: []byte("hash-1"), Scopes: []string{"credentials.fetch"}, CreatedBy: "m1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	update(t, s, func(tx store.Tx) error { return tx.InsertAPIToken(ctx, tok) })
	update(t, s, func(tx store.Tx) error {
		return tx.InsertAPIToken(ctx, &store.APIToken{ID: "tok2", TenantID: "t1", SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Hash: []byte("hash-2"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	})
	update(t, s, func(tx store.Tx) error { return tx.TouchAPIToken(ctx, "tok1", t0.Add(time.Minute)) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetAPITokenByHash(ctx, []byte("hash-1"))
		if err != nil || got.ID != "tok1" || len(got.Scopes) != 1 || got.Scopes[0] != "credentials.fetch" || !got.LastUsedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("GetAPITokenByHash = %+v, %v", got, err)
		}
		// The token's robot does not exist (yet): no subject status.
		a, err := tx.GetTokenAuth(ctx, []byte("hash-1"))
		if err != nil || a.Token.ID != "tok1" || a.Token.Scopes[0] != "credentials.fetch" || a.SubjectStatus != "" ||
			a.TenantStatus != store.TenantActive {
			t.Errorf("GetTokenAuth without its robot = %+v, %v", a, err)
		}
		if got, err := tx.GetAPIToken(ctx, "t1", "tok1"); err != nil || got.ID != "tok1" || string(got.Hash) != "hash-1" {
			t.Errorf("GetAPIToken = %+v, %v", got, err)
		}
		if _, err := tx.GetAPIToken(ctx, "t2", "tok1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAPIToken of another tenant = %v", err)
		}
		if _, err := tx.GetTokenAuth(ctx, []byte("no such hash")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetTokenAuth of an unknown hash = %v", err)
		}
		return nil
	})
	// With its subject, the read carries the subject's state and the
	// tenant's access version.
	update(t, s, func(tx store.Tx) error {
		if err := tx.InsertRobot(ctx, &store.Robot{ID: "rbt_1", TenantID: "t1", Name: "bot", OwnerID: "m1", Status: store.RobotActive, CreatedAt: t0}); err != nil {
			return err
		}
		if err := tx.InsertMember(ctx, &store.Member{ID: "m9", TenantID: "t1", Email: "m9@example.com", Role: store.RoleAdmin,
			Status: store.MemberActive, MFA: true, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return err
		}
		if err := tx.InsertAPIToken(ctx, &store.APIToken{ID: "tok3", TenantID: "t1", SubjectType: store.SubjectMember, SubjectID: "m9",
			Hash: []byte("hash-3"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		return tx.BumpAccess(ctx, "t1")
	})
	view(t, s, func(tx store.Tx) error {
		v, _ := tx.AccessVersion(ctx, "t1")
		if a, err := tx.GetTokenAuth(ctx, []byte("hash-1")); err != nil || a.SubjectStatus != store.RobotActive || a.Role != "" || a.AccessVersion != v || v == 0 {
			t.Errorf("GetTokenAuth of a robot's token = %+v, %v (access version %d)", a, err, v)
		}
		if a, err := tx.GetTokenAuth(ctx, []byte("hash-3")); err != nil || a.SubjectStatus != store.MemberActive || a.Role != store.RoleAdmin || !a.MFA {
			t.Errorf("GetTokenAuth of a member's token = %+v, %v", a, err)
		}
		return nil
	})
	var n int64
	update(t, s, func(tx store.Tx) error {
		var err error
		n, err = tx.RevokeSubjectTokens(ctx, "t1", "rbt_1", t0.Add(2*time.Minute))
		return err
	})
	if n != 2 {
		t.Errorf("RevokeSubjectTokens = %d, want 2", n)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.RevokeAPIToken(ctx, "t1", "tok1", t0) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke a revoked token = %v", err)
	}

	// A pending token keeps its state through every read until approved,
	// once; a revoked pending token is never approved.
	pend := &store.APIToken{ID: "tokp", TenantID: "t1", SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Name: "p",
		Hash: []byte("hash-p"), CreatedBy: "m1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Pending: true}
	gone := &store.APIToken{ID: "tokq", TenantID: "t1", SubjectType: store.SubjectRobot, SubjectID: "rbt_1", Name: "q",
		Hash: []byte("hash-q"), CreatedBy: "m1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Pending: true, RevokedAt: t0}
	update(t, s, func(tx store.Tx) error {
		if err := tx.InsertAPIToken(ctx, pend); err != nil {
			return err
		}
		return tx.InsertAPIToken(ctx, gone)
	})
	view(t, s, func(tx store.Tx) error {
		a, err := tx.GetTokenAuth(ctx, []byte("hash-p"))
		if err != nil || !a.Token.Pending || a.Token.ApprovedBy != "" {
			t.Errorf("GetTokenAuth of a pending token = %+v, %v", a, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.ApproveAPIToken(ctx, "t1", "tokp", "m2", t0.Add(time.Minute)) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetAPIToken(ctx, "t1", "tokp")
		if err != nil || got.Pending || got.ApprovedBy != "m2" || !got.ApprovedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("approved token = %+v, %v", got, err)
		}
		return nil
	})
	for _, id := range []string{"tokp", "tokq", "nope"} {
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.ApproveAPIToken(ctx, "t1", id, "m2", t0) }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("approve %s = %v, want ErrNotFound", id, err)
		}
	}

	ses := &store.Session{ID: "s1", TenantID: "t1", MemberID: "m1", Hash: []byte("sess"), MFA: true, Method: "password",
		SourceIP: "127.0.0.1", UserAgent: "test", CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}
	update(t, s, func(tx store.Tx) error { return tx.InsertSession(ctx, ses) })
	update(t, s, func(tx store.Tx) error { return tx.TouchSession(ctx, "s1", t0.Add(time.Minute)) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetSessionByHash(ctx, []byte("sess"))
		if err != nil || !got.MFA || !got.LastSeenAt.Equal(t0.Add(time.Minute)) || got.Method != "password" {
			t.Errorf("GetSessionByHash = %+v, %v", got, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		var err error
		n, err = tx.RevokeMemberSessions(ctx, "t1", "m1", t0.Add(time.Hour))
		return err
	})
	view(t, s, func(tx store.Tx) error {
		ss, err := tx.ListSessions(ctx, "t1", "m1")
		if err != nil || len(ss) != 1 || ss[0].RevokedAt.IsZero() || n != 1 {
			t.Errorf("sessions after revoke = %+v, %v (n=%d)", ss, err, n)
		}
		return nil
	})
}

func testChallenges(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := &store.Challenge{ID: "c1", Kind: "invite", Hash: []byte("ch"), TenantID: "t1", MemberID: "m1", Data: []byte("x"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	update(t, s, func(tx store.Tx) error { return tx.InsertChallenge(ctx, c) })
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetChallenge(ctx, "mfa", []byte("ch")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("challenge of another kind = %v", err)
		}
		got, err := tx.GetChallenge(ctx, "invite", []byte("ch"))
		if err != nil || string(got.Data) != "x" || got.MemberID != "m1" {
			t.Errorf("GetChallenge = %+v, %v", got, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.SetChallengeData(ctx, "c1", []byte("y")) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetChallenge(ctx, "invite", []byte("ch"))
		if err != nil || string(got.Data) != "y" {
			t.Errorf("after SetChallengeData = %+v, %v", got, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error { return tx.UseChallenge(ctx, "c1", t0) })
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.UseChallenge(ctx, "c1", t0) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second use = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GetChallenge(ctx, "invite", []byte("ch")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("used challenge still found: %v", err)
		}
		return nil
	})
	var n int64
	update(t, s, func(tx store.Tx) error {
		var err error
		n, err = tx.DeleteExpiredChallenges(ctx, t0.Add(time.Hour))
		return err
	})
	if n != 1 {
		t.Errorf("DeleteExpiredChallenges = %d", n)
	}
}

func testGrants(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	g := func(id, subject string, exp time.Duration) *store.Grant {
		return &store.Grant{ID: id, TenantID: "t1", SubjectType: store.SubjectMember, SubjectID: subject, Permission: "credentials.reveal",
			ResourceType: store.ResourceCredential, ResourceID: "cred1", Reason: "month end", CreatedBy: "m0", CreatedAt: t0, ExpiresAt: t0.Add(exp)}
	}
	var v0, v1 int64
	view(t, s, func(tx store.Tx) (err error) { v0, err = tx.AccessVersion(ctx, "t1"); return })
	update(t, s, func(tx store.Tx) error {
		for _, x := range []*store.Grant{g("g1", "m1", time.Hour), g("g2", "m1", 2*time.Hour), g("g3", "m2", time.Minute)} {
			if err := tx.InsertGrant(ctx, x); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) (err error) { v1, err = tx.AccessVersion(ctx, "t1"); return })
	if v1 <= v0 {
		t.Errorf("access version did not move: %d -> %d", v0, v1)
	}
	view(t, s, func(tx store.Tx) error {
		live, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: "t1", LiveAt: t0.Add(30 * time.Minute)})
		if err != nil || len(live) != 2 {
			t.Errorf("live grants = %d, %v, want 2 (g3 expired)", len(live), err)
		}
		mine, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: "t1", SubjectID: "m1"})
		if err != nil || len(mine) != 2 {
			t.Errorf("subject grants = %d, %v", len(mine), err)
		}
		return nil
	})
	var retired []store.Grant
	update(t, s, func(tx store.Tx) (err error) {
		retired, err = tx.RetireExpiredGrants(ctx, t0.Add(time.Hour), 10)
		return
	})
	if len(retired) != 2 || retired[0].ID != "g3" || retired[1].ID != "g1" {
		t.Errorf("retired = %+v, want g3 then g1", retired)
	}
	var n int64
	update(t, s, func(tx store.Tx) (err error) { n, err = tx.RevokeSubjectGrants(ctx, "t1", "m1", t0); return })
	if n != 1 {
		t.Errorf("RevokeSubjectGrants = %d, want 1 (g1 already retired)", n)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.RevokeGrant(ctx, "t1", "g2", t0) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke a revoked grant = %v", err)
	}
}

func testAccessRequests(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	r := &store.AccessRequest{ID: "r1", TenantID: "t1", RequesterID: "m1", Permission: "credentials.reveal", ResourceType: store.ResourceCredential,
		ResourceID: "c1", Duration: 2 * time.Hour, Reason: "payroll", Status: store.RequestPending, ApprovalsNeeded: 2, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	update(t, s, func(tx store.Tx) error { return tx.InsertAccessRequest(ctx, r) })
	r.Approvals = []string{"m2"}
	var ok bool
	update(t, s, func(tx store.Tx) (err error) { ok, err = tx.UpdateAccessRequest(ctx, r, store.RequestPending); return })
	if !ok {
		t.Fatal("update pending request refused")
	}
	r.Status = store.RequestDenied
	update(t, s, func(tx store.Tx) (err error) { ok, err = tx.UpdateAccessRequest(ctx, r, store.RequestApproved); return })
	if ok {
		t.Error("update from the wrong status succeeded")
	}
	view(t, s, func(tx store.Tx) error {
		got, err := tx.GetAccessRequest(ctx, "t1", "r1")
		if err != nil || got.Duration != 2*time.Hour || len(got.Approvals) != 1 || got.Status != store.RequestPending {
			t.Errorf("GetAccessRequest = %+v, %v", got, err)
		}
		due, err := tx.PendingRequestsExpiredBy(ctx, t0.Add(24*time.Hour), 10)
		if err != nil || len(due) != 1 {
			t.Errorf("expired requests = %+v, %v", due, err)
		}
		list, err := tx.ListAccessRequests(ctx, "t1", store.RequestPending, "m1")
		if err != nil || len(list) != 1 {
			t.Errorf("ListAccessRequests = %+v, %v", list, err)
		}
		return nil
	})
}

func testReviews(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	rv := &store.Review{ID: "rv1", TenantID: "t1", Status: store.ReviewOpen, Unanswered: "revoke", CreatedBy: "m1", CreatedAt: t0, Deadline: t0.Add(14 * 24 * time.Hour)}
	items := []store.ReviewItem{
		{Seq: 0, Kind: "role", SubjectType: store.SubjectMember, SubjectID: "m1", Label: "ana@example.com", Permission: "owner", RefID: "m1", LastUsedAt: t0},
		{Seq: 1, Kind: "grant", SubjectType: store.SubjectMember, SubjectID: "m2", Permission: "credentials.reveal", ResourceType: "credential", ResourceID: "c1", RefID: "g1"},
	}
	update(t, s, func(tx store.Tx) error { return tx.InsertReview(ctx, rv, items) })
	items[1].Decision, items[1].DecidedBy, items[1].DecidedAt, items[1].ReviewID = "revoke", "m1", t0.Add(time.Hour), "rv1"
	update(t, s, func(tx store.Tx) error { return tx.UpdateReviewItem(ctx, &items[1]) })
	view(t, s, func(tx store.Tx) error {
		its, err := tx.ListReviewItems(ctx, "rv1")
		if err != nil || len(its) != 2 || its[1].Decision != "revoke" || !its[0].LastUsedAt.Equal(t0) {
			t.Errorf("ListReviewItems = %+v, %v", its, err)
		}
		due, err := tx.OpenReviewsDueBy(ctx, t0.Add(15*24*time.Hour))
		if err != nil || len(due) != 1 {
			t.Errorf("due reviews = %+v, %v", due, err)
		}
		return nil
	})
	rv.Status, rv.ClosedAt, rv.Signoff = store.ReviewClosed, t0.Add(time.Hour), []byte(`{"by":"m1"}`)
	update(t, s, func(tx store.Tx) error { return tx.UpdateReview(ctx, rv) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.LatestReview(ctx, "t1")
		if err != nil || got.Status != store.ReviewClosed || string(got.Signoff) != `{"by":"m1"}` {
			t.Errorf("LatestReview = %+v, %v", got, err)
		}
		return nil
	})
}

func testNotificationsEvidenceFlags(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkTenant(t, s, "t1")
	update(t, s, func(tx store.Tx) error {
		must(t, tx.InsertNotification(ctx, &store.Notification{ID: "n1", TenantID: "t1", MemberID: "m1", Kind: "offboard", Subject: "x", Body: []byte(`{}`), CreatedAt: t0}))
		must(t, tx.InsertEvidence(ctx, &store.Evidence{ID: "e1", TenantID: "t1", Kind: "offboarding", SubjectID: "m2", Body: []byte(`{"a":1}`), CreatedAt: t0}))
		must(t, tx.FlagRotation(ctx, &store.RotationFlag{TenantID: "t1", ResourceType: "credential", ResourceID: "c1", Reason: "leaver", Source: "e1", FlaggedAt: t0}))
		return tx.FlagRotation(ctx, &store.RotationFlag{TenantID: "t1", ResourceType: "credential", ResourceID: "c1", Reason: "again", Source: "e2", FlaggedAt: t0})
	})
	update(t, s, func(tx store.Tx) error { return tx.MarkNotificationRead(ctx, "t1", "m1", "n1", t0) })
	view(t, s, func(tx store.Tx) error {
		ns, err := tx.ListNotifications(ctx, "t1", "m1", 10)
		if err != nil || len(ns) != 1 || ns[0].ReadAt.IsZero() {
			t.Errorf("notifications = %+v, %v", ns, err)
		}
		e, err := tx.GetEvidence(ctx, "t1", "e1")
		if err != nil || string(e.Body) != `{"a":1}` {
			t.Errorf("evidence = %+v, %v", e, err)
		}
		fs, err := tx.ListRotationFlags(ctx, "t1")
		if err != nil || len(fs) != 1 || fs[0].Reason != "again" {
			t.Errorf("rotation flags = %+v, %v", fs, err)
		}
		return nil
	})
}

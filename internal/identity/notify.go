package identity

import (
	"context"
	"encoding/json"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/store"
)

// notify leaves a notification for one member in tx.
func notify(ctx context.Context, tx store.AccessTx, now time.Time, tenantID, memberID, kind, subject string, body map[string]any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return tx.InsertNotification(ctx, &store.Notification{ID: store.NewID("ntf_"), TenantID: tenantID, MemberID: memberID, Kind: kind,
		Subject: subject, Body: b, CreatedAt: now.UTC()})
}

// Notify leaves a notification for one member in tx.
func Notify(ctx context.Context, tx store.AccessTx, now time.Time, tenantID, memberID, kind, subject string, body map[string]any) error {
	return notify(ctx, tx, now, tenantID, memberID, kind, subject, body)
}

// countAdmins counts a tenant's active owners and admins, and those
// invited as such whose invitation may still be accepted.
func countAdmins(ctx context.Context, tx store.Tx, now time.Time, tenantID string) (int, error) {
	ms, err := tx.ListMembers(ctx, tenantID)
	n := 0
	for _, m := range ms {
		invited := m.Status == store.MemberInvited && now.Before(m.CreatedAt.Add(InviteTTL))
		if adminRole(m) && (m.Status == store.MemberActive || invited) {
			n++
		}
	}
	return n, err
}

func adminRole(m store.Member) bool { return m.Role == store.RoleOwner || m.Role == store.RoleAdmin }

// notifyMembers leaves a notification for every active member of a
// tenant, whatever their role.
func notifyMembers(ctx context.Context, tx store.Tx, now time.Time, tenantID, kind, subject string, body map[string]any) error {
	_, err := notifyActive(ctx, tx, now, tenantID, func(store.Member) bool { return true }, kind, subject, body)
	return err
}

// NotifyAdmins leaves a notification for every active owner and admin of a
// tenant and returns how many it reached.
func NotifyAdmins(ctx context.Context, tx store.Tx, now time.Time, tenantID, kind, subject string, body map[string]any) (int, error) {
	return notifyActive(ctx, tx, now, tenantID, adminRole, kind, subject, body)
}

// notifyActive notifies the tenant's active members that pass keep and
// returns how many it reached.
func notifyActive(ctx context.Context, tx store.Tx, now time.Time, tenantID string, keep func(store.Member) bool,
	kind, subject string, body map[string]any) (int, error) {
	ms, err := tx.ListMembers(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if m.Status == store.MemberActive && keep(m) {
			if err := notify(ctx, tx, now, tenantID, m.ID, kind, subject, body); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// RobotTokenHolders maps each person holding one of a robot's live tokens
// or secret IDs (its CreatedBy: the issuer, or for an AppRole login the
// secret ID's issuer) to one such token's ID. Robot dual control judges
// grants and moves by it: whoever holds a robot's token must not also be
// the one who gives the robot secrets.
func RobotTokenHolders(ctx context.Context, tx store.Tx, tenantID, robotID string, now time.Time) (map[string]string, error) {
	ts, err := tx.ListAPITokens(ctx, tenantID, robotID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range ts {
		if t := &ts[i]; t.LiveAt(now) {
			if _, seen := out[t.CreatedBy]; !seen {
				out[t.CreatedBy] = t.ID
			}
		}
	}
	return out, nil
}

// Notifications lists the calling member's notifications, newest first.
func (s *Service) Notifications(ctx context.Context, limit int) ([]store.Notification, error) {
	p := authz.ActorOf(ctx)
	var out []store.Notification
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListNotifications(ctx, p.TenantID, p.ID, limit)
		return err
	})
	return out, wrapErr("notifications", err)
}

// MarkRead marks one of the calling member's notifications read.
func (s *Service) MarkRead(ctx context.Context, id string) error {
	p := authz.ActorOf(ctx)
	return wrapErr("mark read", s.store.Update(ctx, func(tx store.Tx) error {
		return tx.MarkNotificationRead(ctx, p.TenantID, p.ID, id, s.now().UTC())
	}))
}

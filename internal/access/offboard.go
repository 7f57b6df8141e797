package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/sharelinks"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/vault"
)

// Audit actions that hand a credential's secret to its actor. The vault
// records these; the blast-radius report reads them back.
var revealActions = []string{"credential.reveal", "credential.fetch", "credential.export", shareCreate}

// shareCreate is the audit action of a one-time link made; the report
// lists such links as shareResource plus the link's ID.
const (
	shareCreate   = "share.create"
	shareResource = "share:"
)

// OffboardInput names the leaver and who inherits what they owned.
type OffboardInput struct {
	TransferTo string `json:"transfer_to,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// Reach is a resource the leaver could reach and how.
type Reach struct {
	Resource    string   `json:"resource"`
	Via         string   `json:"via"`
	Permissions []string `json:"permissions"`
	ExpiresAt   string   `json:"expires_at,omitempty"`
}

// Revealed is a secret the leaver actually received.
type Revealed struct {
	Resource string    `json:"resource"`
	Actions  []string  `json:"actions"`
	Count    int       `json:"count"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// Report is the blast-radius report of an offboarding.
type Report struct {
	ID              string    `json:"id"`
	TenantID        string    `json:"tenant_id"`
	MemberID        string    `json:"member_id"`
	Role            string    `json:"role"`
	OffboardedAt    time.Time `json:"offboarded_at"`
	OffboardedBy    string    `json:"offboarded_by"`
	Reason          string    `json:"reason,omitempty"`
	TransferredTo   string    `json:"transferred_to,omitempty"`
	SessionsRevoked int64     `json:"sessions_revoked"`
	TokensRevoked   int64     `json:"tokens_revoked"`
	GrantsRevoked   int64     `json:"grants_revoked"`
	RequestsClosed  int       `json:"requests_closed"`
	// ShareLinksBurned is how many of the one-time links the leaver made
	// were still live; the offboarding burned them.
	ShareLinksBurned int        `json:"share_links_burned"`
	Transferred      []string   `json:"transferred"`
	CouldReach       []Reach    `json:"could_reach"`
	ActuallyRead     []Revealed `json:"actually_revealed"`
	RotationNeeded   []string   `json:"rotation_needed"`
	AdminsNotified   int        `json:"admins_notified"`
	AuditLogSize     int64      `json:"audit_log_size"`

	// RevealableRemoved are the credentials (credential:ID) whose
	// revealable list named the leaver: the name is taken off.
	RevealableRemoved []string `json:"revealable_removed"`

	// RobotTokensRevoked are robots' tokens and AppRole secret IDs the
	// leaver issued (and so may have kept a copy of), and the tokens of
	// AppRole logins with them: revoked, so the robots need new ones.
	RobotTokensRevoked []string `json:"robot_tokens_revoked"`

	// CertificatesHeld are the certificates that identify the leaver
	// (credential:ID): revoke them with their issuer and replace them.
	CertificatesHeld []string `json:"certificates_held"`
}

// Offboard removes a member in one action: sessions, tokens and grants
// stop working at once, their pending requests close, what they owned
// moves to transferTo, and the blast-radius report is kept as evidence,
// the credentials it names are flagged for rotation and the tenant's
// admins are notified.
func (s *Service) Offboard(ctx context.Context, tenantID, ref string, in OffboardInput) (*Report, error) {
	actor := authz.ActorOf(ctx)
	var rep *Report
	err := s.store.Update(ctx, func(tx store.Tx) error {
		m, err := identity.MemberOf(ctx, tx, tenantID, ref)
		if err != nil {
			return err
		}
		if m.Status == store.MemberOffboarded {
			return fault.New(fault.Conflict, "offboarded", "member %s was already offboarded", m.ID)
		}
		if m.ID == actor.ID {
			return fault.New(fault.Conflict, "self_offboard", "you cannot offboard yourself; ask another admin")
		}
		if actor.Kind == authz.KindMember && authz.Rank(actor.Role) < authz.Rank(m.Role) {
			return fault.New(fault.Forbidden, "role_too_high", "only an owner may offboard an owner")
		}
		if m.Role == store.RoleOwner && m.Status == store.MemberActive {
			if err := identity.KeepsOwner(ctx, tx, tenantID); err != nil {
				return err
			}
		}
		var heir *store.Member
		if in.TransferTo != "" {
			if heir, err = identity.MemberOf(ctx, tx, tenantID, in.TransferTo); err != nil {
				return err
			}
			if heir.Status != store.MemberActive || heir.ID == m.ID {
				return fault.New(fault.Invalid, "invalid_heir", "transfer_to must be another active member")
			}
		}
		now := s.now().UTC()
		rep = &Report{ID: store.NewID("off_"), TenantID: tenantID, MemberID: m.ID, Role: m.Role, OffboardedAt: now, OffboardedBy: actor.ID,
			Reason: strings.TrimSpace(in.Reason), Transferred: []string{}, CertificatesHeld: []string{},
			RevealableRemoved: []string{}}
		if heir != nil {
			rep.TransferredTo = heir.ID
		}
		// What they could reach, before it is taken away.
		rep.CouldReach = roleReach(tenantID, m.Role)
		grants, err := tx.ListGrants(ctx, store.GrantFilter{TenantID: tenantID, SubjectID: m.ID, LiveAt: now})
		if err != nil {
			return err
		}
		rotate := map[string]bool{}
		for _, g := range grants {
			res := g.ResourceType + ":" + g.ResourceID
			rep.CouldReach = append(rep.CouldReach, Reach{Resource: res, Via: "grant:" + g.ID, Permissions: []string{g.Permission},
				ExpiresAt: g.ExpiresAt.Format(time.RFC3339)})
			if g.ResourceType == store.ResourceCredential && (g.Permission == string(authz.CredentialsReveal) || g.Permission == string(authz.CredentialsFetch)) {
				rotate[res] = true
			}
		}
		if rep.ActuallyRead, rep.AuditLogSize, err = revealed(ctx, tx, tenantID, m.ID); err != nil {
			return err
		}
		for _, r := range rep.ActuallyRead {
			if !strings.HasPrefix(r.Resource, shareResource) {
				rotate[r.Resource] = true
			}
		}
		// Stop everything at once.
		if rep.SessionsRevoked, err = tx.RevokeMemberSessions(ctx, tenantID, m.ID, now); err != nil {
			return err
		}
		if rep.TokensRevoked, err = tx.RevokeSubjectTokens(ctx, tenantID, m.ID, now); err != nil {
			return err
		}
		if rep.GrantsRevoked, err = tx.RevokeSubjectGrants(ctx, tenantID, m.ID, now); err != nil {
			return err
		}
		if rep.RobotTokensRevoked, err = revokeRobotTokensHeldBy(ctx, tx, tenantID, m.ID, now); err != nil {
			return err
		}
		if rep.ShareLinksBurned, err = sharelinks.BurnCreatedBy(ctx, tx, now, tenantID, m.ID); err != nil {
			return err
		}
		reqs, err := tx.ListAccessRequests(ctx, tenantID, store.RequestPending, m.ID)
		if err != nil {
			return err
		}
		for i := range reqs {
			reqs[i].Status, reqs[i].DecidedBy, reqs[i].DecidedAt, reqs[i].DecisionNote = store.RequestCanceled, actor.ID, now, "requester offboarded"
			if ok, err := tx.UpdateAccessRequest(ctx, &reqs[i], store.RequestPending); err != nil {
				return err
			} else if ok {
				rep.RequestsClosed++
			}
		}
		// Hand over what they owned.
		robots, err := tx.ListRobots(ctx, tenantID)
		if err != nil {
			return err
		}
		for i := range robots {
			if robots[i].OwnerID != m.ID {
				continue
			}
			if heir == nil {
				return fault.New(fault.Invalid, "transfer_required", "member %s owns robot %q; name who takes it over with transfer_to", m.ID, robots[i].Name)
			}
			robots[i].OwnerID = heir.ID
			if err := tx.UpdateRobot(ctx, &robots[i]); err != nil {
				return err
			}
			rep.Transferred = append(rep.Transferred, "robot:"+robots[i].ID)
		}
		creds, err := tx.ListCredentials(ctx, store.CredentialFilter{TenantID: tenantID, OwnerID: m.ID})
		if err != nil {
			return err
		}
		for i := range creds {
			if heir == nil {
				return fault.New(fault.Invalid, "transfer_required", "member %s owns credential %q; name who takes it over with transfer_to", m.ID, creds[i].Name)
			}
			creds[i].OwnerID, creds[i].UpdatedAt = heir.ID, now
			if err := tx.UpdateCredential(ctx, &creds[i]); err != nil {
				return err
			}
			rep.Transferred = append(rep.Transferred, "credential:"+creds[i].ID)
		}
		if err := unrevealable(ctx, tx, tenantID, m.ID, now, rep); err != nil {
			return err
		}
		// The person is gone; so are their password and second factors.
		m.Status, m.OffboardedAt, m.UpdatedAt, m.PasswordHash, m.MFA = store.MemberOffboarded, now, now, "", false
		if err := tx.UpdateMember(ctx, m); err != nil {
			return err
		}
		if err := tx.DeleteRecord(ctx, tenantID, "mfa", m.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		held, err := vault.CertificateHolderLeft(ctx, tx, now, tenantID, m.ID, rep.ID)
		if err != nil {
			return err
		}
		for _, id := range held {
			rep.CertificatesHeld = append(rep.CertificatesHeld, store.ResourceCredential+":"+id)
			rotate[store.ResourceCredential+":"+id] = true
		}
		rep.RotationNeeded = sortedKeys(rotate)
		for _, res := range rep.RotationNeeded {
			typ, id, _ := strings.Cut(res, ":")
			if err := tx.FlagRotation(ctx, &store.RotationFlag{TenantID: tenantID, ResourceType: typ, ResourceID: id,
				Reason: "offboarding of " + m.ID, Source: rep.ID, FlaggedAt: now}); err != nil {
				return err
			}
		}
		if rep.AdminsNotified, err = identity.NotifyAdmins(ctx, tx, now, tenantID, "offboarding", "A member was offboarded: review the blast-radius report",
			map[string]any{"member": m.ID, "report": rep.ID, "rotation_needed": len(rep.RotationNeeded)}); err != nil {
			return err
		}
		body, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if err := tx.InsertEvidence(ctx, &store.Evidence{ID: rep.ID, TenantID: tenantID, Kind: "offboarding", SubjectID: m.ID,
			Body: body, CreatedAt: now}); err != nil {
			return err
		}
		return s.record(ctx, tx, tenantID, "member.offboard", m.ID, map[string]any{"report": rep.ID, "transfer_to": rep.TransferredTo,
			"sessions": rep.SessionsRevoked, "tokens": rep.TokensRevoked, "robot_tokens": rep.RobotTokensRevoked, "grants": rep.GrantsRevoked, "share_links": rep.ShareLinksBurned, "rotation_needed": len(rep.RotationNeeded),
			"revealable_removed": len(rep.RevealableRemoved)})
	})
	return rep, wrapErr("offboard", err)
}

// unrevealable takes a leaver off the revealable list of every credential
// of the tenant that names them. The name unlocks nothing once
// they are gone (an offboarded member cannot sign in), but a list that
// still shows them misleads whoever reads it.
func unrevealable(ctx context.Context, tx store.Tx, tenantID, memberID string, now time.Time, rep *Report) error {
	const page = 1000
	after := ""
	for {
		creds, err := tx.ListCredentials(ctx, store.CredentialFilter{TenantID: tenantID, After: after, Limit: page})
		if err != nil {
			return err
		}
		for i := range creds {
			c := &creds[i]
			if !slices.Contains(c.Revealable, memberID) {
				continue
			}
			c.Revealable = slices.DeleteFunc(c.Revealable, func(id string) bool { return id == memberID })
			c.UpdatedAt = now
			if err := tx.UpdateCredential(ctx, c); err != nil {
				return err
			}
			rep.RevealableRemoved = append(rep.RevealableRemoved, store.ResourceCredential+":"+c.ID)
		}
		if len(creds) < page {
			return nil
		}
		after = creds[len(creds)-1].Name
	}
}

// roleReach is what a role reaches without any grant.
func roleReach(tenantID, role string) []Reach {
	var perms []string
	for _, p := range authz.RolePermissions(role) {
		if strings.HasPrefix(string(p), "credentials.") {
			perms = append(perms, string(p))
		}
	}
	if len(perms) == 0 {
		return nil
	}
	return []Reach{{Resource: "tenant:" + tenantID, Via: "role:" + role, Permissions: perms}}
}

// revealed reads the tenant's audit log for every secret the member was
// handed.
func revealed(ctx context.Context, tx store.Tx, tenantID, memberID string) ([]Revealed, int64, error) {
	by := map[string]*Revealed{}
	after := int64(-1)
	for {
		evs, err := tx.ListAudit(ctx, store.AuditFilter{LogID: tenantID, ActorID: memberID, AfterSeq: after, Limit: 1000})
		if err != nil {
			return nil, 0, err
		}
		for _, e := range evs {
			after = e.Seq
			if !slices.Contains(revealActions, e.Action) || e.Result != "ok" {
				continue
			}
			res := e.Target
			switch {
			case e.Action == shareCreate:
				// What they handed out through a one-time link: the server
				// never knew what it was, so it names no credential.
				res = shareResource + res
			case !strings.Contains(res, ":"):
				res = store.ResourceCredential + ":" + res
			}
			r := by[res]
			if r == nil {
				r = &Revealed{Resource: res, First: e.Time}
				by[res] = r
			}
			r.Count++
			r.Last = e.Time
			if !slices.Contains(r.Actions, e.Action) {
				r.Actions = append(r.Actions, e.Action)
			}
		}
		if len(evs) < 1000 {
			break
		}
	}
	size, err := tx.AuditSize(ctx, tenantID)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Revealed, 0, len(by))
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, *by[k])
	}
	return out, size, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// OffboardReport returns a stored report.
func (s *Service) OffboardReport(ctx context.Context, tenantID, id string) (*Report, error) {
	var e *store.Evidence
	err := s.store.View(ctx, func(tx store.Tx) error {
		var err error
		e, err = tx.GetEvidence(ctx, tenantID, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || err == nil && e.Kind != "offboarding" {
		return nil, fault.New(fault.NotFound, "not_found", "no offboarding report %q", id)
	}
	if err != nil {
		return nil, wrapErr("report", err)
	}
	var r Report
	if err := json.Unmarshal(e.Body, &r); err != nil {
		return nil, wrapErr("decode report", err)
	}
	return &r, nil
}

// Text renders the report as a readable document.
func (r *Report) Text() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Offboarding report %s", r.ID)
	w("")
	w("Tenant:         %s", r.TenantID)
	w("Member:         %s (role %s)", r.MemberID, r.Role)
	w("Offboarded:     %s by %s", r.OffboardedAt.Format(time.RFC3339), r.OffboardedBy)
	if r.Reason != "" {
		w("Reason:         %s", r.Reason)
	}
	if r.TransferredTo != "" {
		w("Transferred to: %s", r.TransferredTo)
	}
	w("")
	w("## Access stopped")
	w("")
	w("- %d session(s), %d token(s) and %d grant(s) revoked; %d pending request(s) closed; %d share link(s) burned.",
		r.SessionsRevoked, r.TokensRevoked, r.GrantsRevoked, r.RequestsClosed, r.ShareLinksBurned)
	for _, t := range r.RobotTokensRevoked {
		w("- robot token %s, which they issued, revoked: give its robot a new one", t)
	}
	for _, t := range r.Transferred {
		w("- %s transferred to %s", t, r.TransferredTo)
	}
	for _, c := range r.RevealableRemoved {
		w("- %s: no longer revealable to them", c)
	}
	w("")
	w("## What they could reach")
	w("")
	if len(r.CouldReach) == 0 {
		w("- nothing beyond their own profile")
	}
	for _, c := range r.CouldReach {
		line := fmt.Sprintf("- %s via %s: %s", c.Resource, c.Via, strings.Join(c.Permissions, ", "))
		if c.ExpiresAt != "" {
			line += " (until " + c.ExpiresAt + ")"
		}
		w("%s", line)
	}
	w("")
	w("## What they actually revealed or fetched (from the audit log, %d entries)", r.AuditLogSize)
	w("")
	if len(r.ActuallyRead) == 0 {
		w("- nothing")
	}
	for _, x := range r.ActuallyRead {
		w("- %s: %d time(s) (%s), first %s, last %s", x.Resource, x.Count, strings.Join(x.Actions, ", "),
			x.First.Format(time.RFC3339), x.Last.Format(time.RFC3339))
	}
	if len(r.CertificatesHeld) > 0 {
		w("")
		w("## Certificates that identify them (revoke with the issuer and replace)")
		w("")
		for _, c := range r.CertificatesHeld {
			w("- %s", c)
		}
	}
	w("")
	w("## Rotation needed")
	w("")
	if len(r.RotationNeeded) == 0 {
		w("- none")
	}
	for _, x := range r.RotationNeeded {
		w("- %s", x)
	}
	w("")
	w("%d admin(s) notified.", r.AdminsNotified)
	return b.String()
}

// revokeRobotTokensHeldBy revokes the live robot tokens whose holder
// (CreatedBy: their issuer, or for an AppRole login the secret ID's) is
// the leaver: a robot's token is a secret its issuer saw, and a leaver
// keeping one keeps the robot's reach.
func revokeRobotTokensHeldBy(ctx context.Context, tx store.Tx, tenantID, memberID string, now time.Time) ([]string, error) {
	ts, err := tx.ListAPITokens(ctx, tenantID, "")
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, t := range ts {
		if t.SubjectType != store.SubjectRobot || t.CreatedBy != memberID || !t.LiveAt(now) {
			continue
		}
		if err := tx.RevokeAPIToken(ctx, tenantID, t.ID, now); err != nil {
			return nil, err
		}
		out = append(out, t.ID)
	}
	return out, nil
}

package store

import (
	"context"
	"time"
)

// Member roles in a tenant.
const (
	RoleOwner   = "owner"
	RoleAdmin   = "admin"
	RoleMember  = "member"
	RoleAuditor = "auditor"
)

// Member states.
const (
	MemberInvited    = "invited"
	MemberActive     = "active"
	MemberOffboarded = "offboarded"
)

// Member is a person in a tenant. Audit entries name members only by ID.
type Member struct {
	ID       string
	TenantID string
	// Email is lowercased; it is unique within a tenant.
	Email  string
	Name   string
	Role   string
	Status string
	// PasswordHash is an argon2id PHC string, or "" for SSO-only members.
	PasswordHash string
	// MFA is set once a second factor (TOTP or a passkey) is confirmed; the
	// factors themselves are sealed records.
	MFA bool
	// OIDCSubject is "issuer|subject" once the member signed in with SSO.
	OIDCSubject   string
	FailedSignins int
	LockedUntil   time.Time
	LastSigninAt  time.Time
	LastSeenAt    time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	OffboardedAt  time.Time
}

// Robot states.
const (
	RobotActive   = "active"
	RobotDisabled = "disabled"
)

// Robot is a service account: automation that fetches credentials, never a
// person.
type Robot struct {
	ID         string
	TenantID   string
	Name       string
	OwnerID    string
	Status     string
	CreatedAt  time.Time
	DisabledAt time.Time
}

// Subject types of tokens, sessions and grants.
const (
	SubjectMember = "member"
	SubjectRobot  = "robot"
)

// APIToken authenticates a person or robot of one tenant, limited to
// scopes. Only its hash is stored.
// TokenAuth is an API token with the state of its subject and tenant.
type TokenAuth struct {
	Token APIToken
	// SubjectStatus is the member's or robot's status; "" when the
	// subject does not exist.
	SubjectStatus string
	Role          string // a member's
	MFA           bool   // whether a member has a second factor
	TenantStatus  string
	AccessVersion int64
}

type APIToken struct {
	ID          string
	TenantID    string
	SubjectType string
	SubjectID   string
	Name        string
	Hash        []byte
	// Scopes are the permissions the token may use (never more than its
	// subject has).
	Scopes     []string
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
	// Pending marks a robot's token that waits for an owner or admin other
	// than its issuer to approve it (dual control); it authenticates
	// nothing until then. ApprovedBy and ApprovedAt say who ended the wait.
	Pending    bool
	ApprovedBy string
	ApprovedAt time.Time
}

// LiveAt reports whether t may still be used at now: not revoked, not
// expired (whether it waits for approval is a separate matter).
func (t *APIToken) LiveAt(now time.Time) bool { return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt) }

// Session is a signed-in browser (or CLI) of a member. Only its hash is
// stored.
type Session struct {
	ID       string
	TenantID string
	MemberID string
	Hash     []byte
	// MFA reports that a second factor was given at sign-in.
	MFA bool
	// Method is how the member signed in: password, sso.
	Method     string
	SourceIP   string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute expiry; idle expiry is LastSeenAt plus the
	// idle timeout.
	ExpiresAt time.Time
	RevokedAt time.Time
}

// Challenge is a one-time secret with an expiry: an invitation, a pending
// sign-in waiting for its second factor, a WebAuthn or OIDC ceremony. Only
// the hash of its token is stored; Data is opaque to the store (sealed by
// the caller when it is secret).
type Challenge struct {
	ID        string
	Kind      string
	Hash      []byte
	TenantID  string
	MemberID  string
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// Resource types a grant may name.
const (
	ResourceTenant     = "tenant"
	ResourceGroup      = "group"
	ResourceCredential = "credential"
)

// Grant gives a subject a permission on a resource until ExpiresAt.
type Grant struct {
	ID           string
	TenantID     string
	SubjectType  string
	SubjectID    string
	Permission   string
	ResourceType string
	ResourceID   string
	Reason       string
	CreatedBy    string
	// RequestID links a grant made by approving an access request.
	RequestID  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	RetiredAt  time.Time
	LastUsedAt time.Time
}

// Live reports whether g is in force at now.
func (g *Grant) Live(now time.Time) bool {
	return g.RevokedAt.IsZero() && g.RetiredAt.IsZero() && now.Before(g.ExpiresAt)
}

// GrantFilter selects grants of a tenant.
type GrantFilter struct {
	TenantID  string
	SubjectID string // "" for every subject
	// LiveAt, when set, keeps only grants in force at that time.
	LiveAt time.Time
}

// Access request states.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDenied   = "denied"
	RequestExpired  = "expired"
	RequestCanceled = "canceled"
)

// AccessRequest asks for a permission on a resource for a while.
type AccessRequest struct {
	ID              string
	TenantID        string
	RequesterID     string
	Permission      string
	ResourceType    string
	ResourceID      string
	Duration        time.Duration
	Reason          string
	Status          string
	ApprovalsNeeded int
	// Approvals are the IDs of the members who approved so far.
	Approvals    []string
	DecidedBy    string
	DecisionNote string
	GrantID      string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	DecidedAt    time.Time
}

// Review states.
const (
	ReviewOpen   = "open"
	ReviewClosed = "closed"
)

// Review is an access-review campaign of one tenant.
type Review struct {
	ID       string
	TenantID string
	Status   string
	// Unanswered is what happens to lines left undecided at the deadline:
	// "revoke" or "escalate".
	Unanswered string
	CreatedBy  string
	CreatedAt  time.Time
	Deadline   time.Time
	ClosedAt   time.Time
	// Signoff is the JSON evidence written when the campaign closed.
	Signoff []byte
}

// ReviewItem is one line of a review: a member's role, a grant, a token or
// a robot, with its last use.
type ReviewItem struct {
	ReviewID     string `json:"review_id"`
	Seq          int    `json:"seq"`
	Kind         string `json:"kind"`
	SubjectType  string `json:"subject_type"`
	SubjectID    string `json:"subject_id"`
	Label        string `json:"label,omitempty"`
	Permission   string `json:"permission,omitempty"`
	ResourceType string `json:"resource_type,omitempty"`
	ResourceID   string `json:"resource_id,omitempty"`
	// RefID is the ID of what is reviewed (member, grant, token, robot).
	RefID      string    `json:"ref_id"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Decision   string    `json:"decision,omitempty"`
	DecidedBy  string    `json:"decided_by,omitempty"`
	Note       string    `json:"note,omitempty"`
	DecidedAt  time.Time `json:"decided_at,omitzero"`
}

// Notification is a message to a member, shown in the console and the API.
type Notification struct {
	ID        string
	TenantID  string
	MemberID  string
	Kind      string
	Subject   string
	Body      []byte
	CreatedAt time.Time
	ReadAt    time.Time
}

// Evidence is a document kept for auditors: an offboarding report, a
// signed-off access review.
type Evidence struct {
	ID        string
	TenantID  string
	Kind      string
	SubjectID string
	Body      []byte
	CreatedAt time.Time
}

// RotationFlag marks a resource whose secret should be rotated.
type RotationFlag struct {
	TenantID     string    `json:"tenant_id"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Reason       string    `json:"reason"`
	Source       string    `json:"source,omitempty"`
	FlaggedAt    time.Time `json:"flagged_at"`
	ClearedAt    time.Time `json:"cleared_at,omitzero"`
}

// IdentityTx stores members, robots, tokens, sessions and challenges.
type IdentityTx interface {
	InsertMember(ctx context.Context, m *Member) error
	GetMember(ctx context.Context, tenantID, id string) (*Member, error)
	GetMemberByEmail(ctx context.Context, tenantID, email string) (*Member, error)
	ListMembers(ctx context.Context, tenantID string) ([]Member, error)
	// UpdateMember writes every mutable field of m.
	UpdateMember(ctx context.Context, m *Member) error
	// CountOwners counts a tenant's active owners.
	CountOwners(ctx context.Context, tenantID string) (int, error)

	InsertRobot(ctx context.Context, r *Robot) error
	GetRobot(ctx context.Context, tenantID, id string) (*Robot, error)
	ListRobots(ctx context.Context, tenantID string) ([]Robot, error)
	UpdateRobot(ctx context.Context, r *Robot) error

	InsertAPIToken(ctx context.Context, t *APIToken) error
	GetAPITokenByHash(ctx context.Context, hash []byte) (*APIToken, error)
	// GetAPIToken reads one of a tenant's tokens by ID.
	GetAPIToken(ctx context.Context, tenantID, id string) (*APIToken, error)
	// GetTokenAuth reads a token with what authenticating it needs, in one
	// read: its subject's state and its tenant's.
	GetTokenAuth(ctx context.Context, hash []byte) (*TokenAuth, error)
	// ListAPITokens lists a tenant's tokens, of one subject when subjectID
	// is not "".
	ListAPITokens(ctx context.Context, tenantID, subjectID string) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, tenantID, id string, at time.Time) error
	// ApproveAPIToken ends a live pending token's wait; ErrNotFound when
	// no such token is pending and unrevoked.
	ApproveAPIToken(ctx context.Context, tenantID, id, by string, at time.Time) error
	// PendAPIToken makes a live token wait for approval again.
	PendAPIToken(ctx context.Context, tenantID, id string) error
	// RevokeSubjectTokens revokes every live token of a subject.
	RevokeSubjectTokens(ctx context.Context, tenantID, subjectID string, at time.Time) (int64, error)
	TouchAPIToken(ctx context.Context, id string, at time.Time) error

	InsertSession(ctx context.Context, s *Session) error
	GetSessionByHash(ctx context.Context, hash []byte) (*Session, error)
	ListSessions(ctx context.Context, tenantID, memberID string) ([]Session, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
	RevokeSession(ctx context.Context, id string, at time.Time) error
	RevokeMemberSessions(ctx context.Context, tenantID, memberID string, at time.Time) (int64, error)

	InsertChallenge(ctx context.Context, c *Challenge) error
	// GetChallenge finds an unused challenge of a kind by its token hash.
	GetChallenge(ctx context.Context, kind string, hash []byte) (*Challenge, error)
	// UseChallenge marks a challenge used; ErrNotFound when it was already
	// used, so a challenge is spent exactly once.
	UseChallenge(ctx context.Context, id string, at time.Time) error
	// SetChallengeData replaces an unused challenge's data.
	SetChallengeData(ctx context.Context, id string, data []byte) error
	// ListChallenges lists unused challenges of a kind in a tenant.
	ListChallenges(ctx context.Context, tenantID, kind string) ([]Challenge, error)
	DeleteExpiredChallenges(ctx context.Context, before time.Time) (int64, error)
}

// AccessTx stores grants, access requests, reviews and what they leave.
type AccessTx interface {
	InsertGrant(ctx context.Context, g *Grant) error
	GetGrant(ctx context.Context, tenantID, id string) (*Grant, error)
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	RevokeGrant(ctx context.Context, tenantID, id string, at time.Time) error
	RevokeSubjectGrants(ctx context.Context, tenantID, subjectID string, at time.Time) (int64, error)
	// RetireExpiredGrants marks up to limit grants that expired at or before
	// now as retired and returns them.
	RetireExpiredGrants(ctx context.Context, now time.Time, limit int) ([]Grant, error)
	TouchGrant(ctx context.Context, id string, at time.Time) error
	// AccessVersion is a tenant's counter of grant changes; BumpAccess
	// increments it.
	AccessVersion(ctx context.Context, tenantID string) (int64, error)
	BumpAccess(ctx context.Context, tenantID string) error

	InsertAccessRequest(ctx context.Context, r *AccessRequest) error
	GetAccessRequest(ctx context.Context, tenantID, id string) (*AccessRequest, error)
	// ListAccessRequests lists a tenant's requests, newest first, filtered
	// by status and requester when not "".
	ListAccessRequests(ctx context.Context, tenantID, status, requesterID string) ([]AccessRequest, error)
	// UpdateAccessRequest writes r only while its stored status is
	// fromStatus; it reports whether it did.
	UpdateAccessRequest(ctx context.Context, r *AccessRequest, fromStatus string) (bool, error)
	// PendingRequestsExpiredBy lists up to limit pending requests whose
	// expiry is at or before now.
	PendingRequestsExpiredBy(ctx context.Context, now time.Time, limit int) ([]AccessRequest, error)

	InsertReview(ctx context.Context, r *Review, items []ReviewItem) error
	GetReview(ctx context.Context, tenantID, id string) (*Review, error)
	ListReviews(ctx context.Context, tenantID string) ([]Review, error)
	ListReviewItems(ctx context.Context, reviewID string) ([]ReviewItem, error)
	UpdateReviewItem(ctx context.Context, it *ReviewItem) error
	UpdateReview(ctx context.Context, r *Review) error
	// OpenReviewsDueBy lists open reviews whose deadline is at or before now.
	OpenReviewsDueBy(ctx context.Context, now time.Time) ([]Review, error)
	// LatestReview is the newest review of a tenant (ErrNotFound if none).
	LatestReview(ctx context.Context, tenantID string) (*Review, error)

	InsertNotification(ctx context.Context, n *Notification) error
	ListNotifications(ctx context.Context, tenantID, memberID string, limit int) ([]Notification, error)
	MarkNotificationRead(ctx context.Context, tenantID, memberID, id string, at time.Time) error

	InsertEvidence(ctx context.Context, e *Evidence) error
	GetEvidence(ctx context.Context, tenantID, id string) (*Evidence, error)
	ListEvidence(ctx context.Context, tenantID, kind string) ([]Evidence, error)

	// FlagRotation inserts or refreshes a flag.
	FlagRotation(ctx context.Context, f *RotationFlag) error
	ListRotationFlags(ctx context.Context, tenantID string) ([]RotationFlag, error)
}

package sqldb

import (
	"context"
	"encoding/json"
	"time"

	"github.com/custodia-project/custodia/internal/store"
)

type scanner = interface{ Scan(...any) error }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func parseList(s string) []string {
	var v []string
	_ = json.Unmarshal([]byte(s), &v)
	return v
}

// ---- members ----

const memberCols = `id, tenant_id, email, name, role, status, password_hash, mfa, oidc_subject, failed_signins,
	locked_until, last_signin_at, last_seen_at, created_at, updated_at, offboarded_at`

func scanMember(s scanner) (store.Member, error) {
	var m store.Member
	var mfa int
	var lu, ls, lseen, c, u, o int64
	err := s.Scan(&m.ID, &m.TenantID, &m.Email, &m.Name, &m.Role, &m.Status, &m.PasswordHash, &mfa, &m.OIDCSubject,
		&m.FailedSignins, &lu, &ls, &lseen, &c, &u, &o)
	m.MFA = mfa != 0
	m.LockedUntil, m.LastSigninAt, m.LastSeenAt = fromMicros(lu), fromMicros(ls), fromMicros(lseen)
	m.CreatedAt, m.UpdatedAt, m.OffboardedAt = fromMicros(c), fromMicros(u), fromMicros(o)
	return m, err
}

func (t *tx) InsertMember(ctx context.Context, m *store.Member) error {
	_, err := t.exec(ctx, "insert member",
		`INSERT INTO members (`+memberCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		m.ID, m.TenantID, m.Email, m.Name, m.Role, m.Status, m.PasswordHash, b2i(m.MFA), m.OIDCSubject, m.FailedSignins,
		toMicros(m.LockedUntil), toMicros(m.LastSigninAt), toMicros(m.LastSeenAt), toMicros(m.CreatedAt), toMicros(m.UpdatedAt),
		toMicros(m.OffboardedAt))
	return err
}

func (t *tx) getMember(ctx context.Context, op, where string, args ...any) (*store.Member, error) {
	m, err := scanMember(t.queryRow(ctx, `SELECT `+memberCols+` FROM members WHERE `+where, args...))
	if err != nil {
		return nil, t.wrap(op, err)
	}
	return &m, nil
}

func (t *tx) GetMember(ctx context.Context, tenantID, id string) (*store.Member, error) {
	return t.getMember(ctx, "get member", `tenant_id = $1 AND id = $2`, tenantID, id)
}

func (t *tx) GetMemberByEmail(ctx context.Context, tenantID, email string) (*store.Member, error) {
	return t.getMember(ctx, "get member by email", `tenant_id = $1 AND email = $2`, tenantID, email)
}

func (t *tx) ListMembers(ctx context.Context, tenantID string) ([]store.Member, error) {
	rows, err := t.query(ctx, `SELECT `+memberCols+` FROM members WHERE tenant_id = $1 ORDER BY email`, tenantID)
	if err != nil {
		return nil, t.wrap("list members", err)
	}
	return collect(t, "list members", rows, scanMember)
}

func (t *tx) UpdateMember(ctx context.Context, m *store.Member) error {
	res, err := t.exec(ctx, "update member",
		`UPDATE members SET email = $1, name = $2, role = $3, status = $4, password_hash = $5, mfa = $6, oidc_subject = $7,
		   failed_signins = $8, locked_until = $9, last_signin_at = $10, last_seen_at = $11, updated_at = $12, offboarded_at = $13
		 WHERE tenant_id = $14 AND id = $15`,
		m.Email, m.Name, m.Role, m.Status, m.PasswordHash, b2i(m.MFA), m.OIDCSubject, m.FailedSignins,
		toMicros(m.LockedUntil), toMicros(m.LastSigninAt), toMicros(m.LastSeenAt), toMicros(m.UpdatedAt), toMicros(m.OffboardedAt),
		m.TenantID, m.ID)
	if err != nil {
		return err
	}
	return t.mustAffect("update member", res)
}

func (t *tx) CountOwners(ctx context.Context, tenantID string) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM members WHERE tenant_id = $1 AND role = $2 AND status = $3`,
		tenantID, store.RoleOwner, store.MemberActive).Scan(&n)
	return n, t.wrapNil("count owners", err)
}

// ---- robots ----

const robotCols = `id, tenant_id, name, owner_id, status, created_at, disabled_at`

func scanRobot(s scanner) (store.Robot, error) {
	var r store.Robot
	var c, d int64
	err := s.Scan(&r.ID, &r.TenantID, &r.Name, &r.OwnerID, &r.Status, &c, &d)
	r.CreatedAt, r.DisabledAt = fromMicros(c), fromMicros(d)
	return r, err
}

func (t *tx) InsertRobot(ctx context.Context, r *store.Robot) error {
	_, err := t.exec(ctx, "insert robot", `INSERT INTO robots (`+robotCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		r.ID, r.TenantID, r.Name, r.OwnerID, r.Status, toMicros(r.CreatedAt), toMicros(r.DisabledAt))
	return err
}

func (t *tx) GetRobot(ctx context.Context, tenantID, id string) (*store.Robot, error) {
	// Locked in a write: issuing a robot's token and granting it
	// credentials.fetch each judge the other (dual control), so on
	// PostgreSQL they must not interleave.
	r, err := scanRobot(t.queryRow(ctx, `SELECT `+robotCols+` FROM robots WHERE tenant_id = $1 AND (id = $2 OR name = $2)`+t.lockRows(),
		tenantID, id))
	if err != nil {
		return nil, t.wrap("get robot", err)
	}
	return &r, nil
}

func (t *tx) ListRobots(ctx context.Context, tenantID string) ([]store.Robot, error) {
	rows, err := t.query(ctx, `SELECT `+robotCols+` FROM robots WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, t.wrap("list robots", err)
	}
	return collect(t, "list robots", rows, scanRobot)
}

func (t *tx) UpdateRobot(ctx context.Context, r *store.Robot) error {
	res, err := t.exec(ctx, "update robot", `UPDATE robots SET name = $1, owner_id = $2, status = $3, disabled_at = $4
		WHERE tenant_id = $5 AND id = $6`, r.Name, r.OwnerID, r.Status, toMicros(r.DisabledAt), r.TenantID, r.ID)
	if err != nil {
		return err
	}
	return t.mustAffect("update robot", res)
}

// ---- API tokens ----

const apiTokenCols = `id, tenant_id, subject_type, subject_id, name, token_hash, scopes, created_by, created_at, expires_at, revoked_at,
	last_used_at, pending, approved_by, approved_at`

// apiTokenDests are the scan destinations of apiTokenCols; finish fills
// x's converted fields once the row is scanned.
func apiTokenDests(x *store.APIToken) (dests []any, finish func()) {
	var scopes string
	var c, e, r, l, a int64
	var pending int
	return []any{&x.ID, &x.TenantID, &x.SubjectType, &x.SubjectID, &x.Name, &x.Hash, &scopes, &x.CreatedBy, &c, &e, &r, &l,
			&pending, &x.ApprovedBy, &a}, func() {
			x.Scopes, x.Pending = parseList(scopes), pending != 0
			x.CreatedAt, x.ExpiresAt, x.RevokedAt, x.LastUsedAt = fromMicros(c), fromMicros(e), fromMicros(r), fromMicros(l)
			x.ApprovedAt = fromMicros(a)
		}
}

func scanAPIToken(s scanner) (store.APIToken, error) {
	var x store.APIToken
	dests, finish := apiTokenDests(&x)
	err := s.Scan(dests...)
	finish()
	return x, err
}

func (t *tx) InsertAPIToken(ctx context.Context, x *store.APIToken) error {
	pending := 0
	if x.Pending {
		pending = 1
	}
	_, err := t.exec(ctx, "insert api token",
		`INSERT INTO api_tokens (`+apiTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		x.ID, x.TenantID, x.SubjectType, x.SubjectID, x.Name, x.Hash, jsonList(x.Scopes), x.CreatedBy,
		toMicros(x.CreatedAt), toMicros(x.ExpiresAt), toMicros(x.RevokedAt), toMicros(x.LastUsedAt), pending, x.ApprovedBy,
		toMicros(x.ApprovedAt))
	return err
}

func (t *tx) PendAPIToken(ctx context.Context, tenantID, id string) error {
	res, err := t.exec(ctx, "pend api token", `UPDATE api_tokens SET pending = 1, approved_by = '', approved_at = 0
		WHERE tenant_id = $1 AND id = $2 AND pending = 0 AND revoked_at = 0`, tenantID, id)
	if err != nil {
		return err
	}
	return t.mustAffect("pend api token", res)
}

func (t *tx) ApproveAPIToken(ctx context.Context, tenantID, id, by string, at time.Time) error {
	res, err := t.exec(ctx, "approve api token", `UPDATE api_tokens SET pending = 0, approved_by = $1, approved_at = $2
		WHERE tenant_id = $3 AND id = $4 AND pending = 1 AND revoked_at = 0`, by, toMicros(at), tenantID, id)
	if err != nil {
		return err
	}
	return t.mustAffect("approve api token", res)
}

func (t *tx) GetAPITokenByHash(ctx context.Context, hash []byte) (*store.APIToken, error) {
	x, err := scanAPIToken(t.queryRow(ctx, `SELECT `+apiTokenCols+` FROM api_tokens WHERE token_hash = $1`, hash))
	if err != nil {
		return nil, t.wrap("get api token", err)
	}
	return &x, nil
}

func (t *tx) GetAPIToken(ctx context.Context, tenantID, id string) (*store.APIToken, error) {
	x, err := scanAPIToken(t.queryRow(ctx, `SELECT `+apiTokenCols+` FROM api_tokens WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, t.wrap("get api token", err)
	}
	return &x, nil
}

func (t *tx) GetTokenAuth(ctx context.Context, hash []byte) (*store.TokenAuth, error) {
	var a store.TokenAuth
	var mfa int
	dests, finish := apiTokenDests(&a.Token)
	err := t.queryRow(ctx, `SELECT k.id, k.tenant_id, k.subject_type, k.subject_id, k.name, k.token_hash, k.scopes, k.created_by,
		  k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.pending, k.approved_by, k.approved_at,
		  COALESCE(m.status, r.status, ''), COALESCE(m.role, ''), COALESCE(m.mfa, 0), t.status, t.access_version
		FROM api_tokens k
		JOIN tenants t ON t.id = k.tenant_id
		LEFT JOIN members m ON k.subject_type = $2 AND m.tenant_id = k.tenant_id AND m.id = k.subject_id
		LEFT JOIN robots r ON k.subject_type = $3 AND r.tenant_id = k.tenant_id AND r.id = k.subject_id
		WHERE k.token_hash = $1`, hash, store.SubjectMember, store.SubjectRobot).Scan(
		append(dests, &a.SubjectStatus, &a.Role, &mfa, &a.TenantStatus, &a.AccessVersion)...)
	if err != nil {
		return nil, t.wrap("get token auth", err)
	}
	finish()
	a.MFA = mfa != 0
	return &a, nil
}

func (t *tx) ListAPITokens(ctx context.Context, tenantID, subjectID string) ([]store.APIToken, error) {
	rows, err := t.query(ctx, `SELECT `+apiTokenCols+` FROM api_tokens
		WHERE tenant_id = $1 AND ($2 = '' OR subject_id = $2) ORDER BY created_at, id`, tenantID, subjectID)
	if err != nil {
		return nil, t.wrap("list api tokens", err)
	}
	return collect(t, "list api tokens", rows, scanAPIToken)
}

func (t *tx) RevokeAPIToken(ctx context.Context, tenantID, id string, at time.Time) error {
	res, err := t.exec(ctx, "revoke api token",
		`UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at = 0`, toMicros(at), tenantID, id)
	if err != nil {
		return err
	}
	return t.mustAffect("revoke api token", res)
}

func (t *tx) affected(op string, res interface{ RowsAffected() (int64, error) }) (int64, error) {
	n, err := res.RowsAffected()
	return n, t.wrapNil(op, err)
}

func (t *tx) RevokeSubjectTokens(ctx context.Context, tenantID, subjectID string, at time.Time) (int64, error) {
	res, err := t.exec(ctx, "revoke subject tokens",
		`UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND subject_id = $3 AND revoked_at = 0`, toMicros(at), tenantID, subjectID)
	if err != nil {
		return 0, err
	}
	return t.affected("revoke subject tokens", res)
}

func (t *tx) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	_, err := t.exec(ctx, "touch api token", `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, toMicros(at), id)
	return err
}

// ---- sessions ----

const sessionCols = `id, tenant_id, member_id, token_hash, mfa, method, source_ip, user_agent, created_at, last_seen_at, expires_at, revoked_at`

func scanSession(s scanner) (store.Session, error) {
	var x store.Session
	var mfa int
	var c, l, e, r int64
	err := s.Scan(&x.ID, &x.TenantID, &x.MemberID, &x.Hash, &mfa, &x.Method, &x.SourceIP, &x.UserAgent, &c, &l, &e, &r)
	x.MFA = mfa != 0
	x.CreatedAt, x.LastSeenAt, x.ExpiresAt, x.RevokedAt = fromMicros(c), fromMicros(l), fromMicros(e), fromMicros(r)
	return x, err
}

func (t *tx) InsertSession(ctx context.Context, x *store.Session) error {
	_, err := t.exec(ctx, "insert session",
		`INSERT INTO sessions (`+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		x.ID, x.TenantID, x.MemberID, x.Hash, b2i(x.MFA), x.Method, x.SourceIP, x.UserAgent,
		toMicros(x.CreatedAt), toMicros(x.LastSeenAt), toMicros(x.ExpiresAt), toMicros(x.RevokedAt))
	return err
}

func (t *tx) GetSessionByHash(ctx context.Context, hash []byte) (*store.Session, error) {
	x, err := scanSession(t.queryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE token_hash = $1`, hash))
	if err != nil {
		return nil, t.wrap("get session", err)
	}
	return &x, nil
}

func (t *tx) ListSessions(ctx context.Context, tenantID, memberID string) ([]store.Session, error) {
	rows, err := t.query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE tenant_id = $1 AND member_id = $2
		ORDER BY created_at, id`, tenantID, memberID)
	if err != nil {
		return nil, t.wrap("list sessions", err)
	}
	return collect(t, "list sessions", rows, scanSession)
}

func (t *tx) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := t.exec(ctx, "touch session", `UPDATE sessions SET last_seen_at = $1 WHERE id = $2`, toMicros(at), id)
	return err
}

func (t *tx) RevokeSession(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, "revoke session", `UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`, toMicros(at), id)
	if err != nil {
		return err
	}
	return t.mustAffect("revoke session", res)
}

func (t *tx) RevokeMemberSessions(ctx context.Context, tenantID, memberID string, at time.Time) (int64, error) {
	res, err := t.exec(ctx, "revoke member sessions",
		`UPDATE sessions SET revoked_at = $1 WHERE tenant_id = $2 AND member_id = $3 AND revoked_at = 0`, toMicros(at), tenantID, memberID)
	if err != nil {
		return 0, err
	}
	return t.affected("revoke member sessions", res)
}

// ---- challenges ----

const challengeCols = `id, kind, token_hash, tenant_id, member_id, data, created_at, expires_at, used_at`

func scanChallenge(s scanner) (store.Challenge, error) {
	var x store.Challenge
	var c, e, u int64
	err := s.Scan(&x.ID, &x.Kind, &x.Hash, &x.TenantID, &x.MemberID, &x.Data, &c, &e, &u)
	x.CreatedAt, x.ExpiresAt, x.UsedAt = fromMicros(c), fromMicros(e), fromMicros(u)
	return x, err
}

func (t *tx) InsertChallenge(ctx context.Context, x *store.Challenge) error {
	data := x.Data
	if data == nil {
		data = []byte{}
	}
	_, err := t.exec(ctx, "insert challenge", `INSERT INTO challenges (`+challengeCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		x.ID, x.Kind, x.Hash, x.TenantID, x.MemberID, data, toMicros(x.CreatedAt), toMicros(x.ExpiresAt), toMicros(x.UsedAt))
	return err
}

func (t *tx) GetChallenge(ctx context.Context, kind string, hash []byte) (*store.Challenge, error) {
	x, err := scanChallenge(t.queryRow(ctx, `SELECT `+challengeCols+` FROM challenges
		WHERE token_hash = $1 AND kind = $2 AND used_at = 0`, hash, kind))
	if err != nil {
		return nil, t.wrap("get challenge", err)
	}
	return &x, nil
}

func (t *tx) UseChallenge(ctx context.Context, id string, at time.Time) error {
	res, err := t.exec(ctx, "use challenge", `UPDATE challenges SET used_at = $1 WHERE id = $2 AND used_at = 0`, toMicros(at), id)
	if err != nil {
		return err
	}
	return t.mustAffect("use challenge", res)
}

func (t *tx) SetChallengeData(ctx context.Context, id string, data []byte) error {
	res, err := t.exec(ctx, "set challenge data", `UPDATE challenges SET data = $1 WHERE id = $2 AND used_at = 0`, data, id)
	if err != nil {
		return err
	}
	return t.mustAffect("set challenge data", res)
}

func (t *tx) ListChallenges(ctx context.Context, tenantID, kind string) ([]store.Challenge, error) {
	rows, err := t.query(ctx, `SELECT `+challengeCols+` FROM challenges WHERE tenant_id = $1 AND kind = $2 AND used_at = 0
		ORDER BY created_at, id`, tenantID, kind)
	if err != nil {
		return nil, t.wrap("list challenges", err)
	}
	return collect(t, "list challenges", rows, scanChallenge)
}

func (t *tx) DeleteExpiredChallenges(ctx context.Context, before time.Time) (int64, error) {
	res, err := t.exec(ctx, "delete expired challenges", `DELETE FROM challenges WHERE expires_at <= $1`, toMicros(before))
	if err != nil {
		return 0, err
	}
	return t.affected("delete expired challenges", res)
}

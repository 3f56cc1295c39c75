package followup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// LinkGrace is how long a parent link outlives the last timepoint's grace period.
const LinkGrace = 30 * 24 * time.Hour

// ParentLink is a link given to a family. The token is shown once, at creation.
type ParentLink struct {
	ID          uuid.UUID  `json:"id"`
	ProcedureID uuid.UUID  `json:"procedure_id"`
	URL         string     `json:"url,omitempty"` // only when just created
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Active reports whether the link still opens at now.
func (l ParentLink) Active(now time.Time) bool { return l.RevokedAt == nil && now.Before(l.ExpiresAt) }

// newToken returns 32 random bytes as URL-safe base64 (43 characters).
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is how every secret token (parent links, and API tokens in accounts) is stored:
// its SHA-256 only.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateLink makes a new parent link for a procedure; with rotate, every other active link of
// the procedure is revoked in the same transaction (the family lost the old one, say).
func (s *Service) CreateLink(ctx context.Context, a Actor, procedureID uuid.UUID, rotate bool) (ParentLink, error) {
	if err := a.requireClinical(); err != nil {
		return ParentLink{}, err
	}
	token := newToken()
	var l ParentLink
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := s.procedure(ctx, tx, a, procedureID, true)
		if err != nil {
			return err
		}
		if p.Status != StatusActive {
			return Errorf(ECONFLICT, "this procedure is %s: reopen it before sending a new link", p.Status)
		}
		var lastGrace time.Time
		if err := tx.QueryRow(ctx, `select coalesce(max(grace_ends_at), now()) from timepoints where procedure_id = $1`, procedureID).Scan(&lastGrace); err != nil {
			return unavailable(err)
		}
		expires := lastGrace.Add(LinkGrace)
		if now := s.now(); expires.Before(now.Add(7 * 24 * time.Hour)) {
			expires = now.Add(7 * 24 * time.Hour) // a late link still gives a week to send photos
		}
		if rotate {
			rows, err := tx.Query(ctx, `update parent_links set revoked_at = now()
				where procedure_id = $1 and revoked_at is null returning id`, procedureID)
			if err != nil {
				return unavailable(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				return unavailable(err)
			}
			for _, id := range ids {
				if err := audit(ctx, tx, a, AuditEvent{Action: AuditLinkRevoked, TargetKind: "parent_link", TargetID: id,
					Detail: map[string]any{"procedure": procedureID, "rotated": true}}); err != nil {
					return err
				}
			}
		}
		err = tx.QueryRow(ctx, `insert into parent_links (clinic_id, procedure_id, token_hash, created_by, expires_at)
			values ($1, $2, $3, $4, $5) returning id, created_at, expires_at`,
			a.ClinicID, procedureID, tokenHash(token), a.ID, expires).Scan(&l.ID, &l.CreatedAt, &l.ExpiresAt)
		if err != nil {
			return unavailable(err)
		}
		l.ProcedureID = procedureID
		return audit(ctx, tx, a, AuditEvent{Action: AuditLinkCreated, TargetKind: "parent_link", TargetID: l.ID,
			Detail: map[string]any{"procedure": procedureID}})
	})
	if err != nil {
		return ParentLink{}, wrap(err, "create link for procedure %s", procedureID)
	}
	l.URL = s.baseURL + "/p/" + token
	return l, nil
}

// RevokeLink stops a parent link from opening. Revoking a revoked link changes nothing.
func (s *Service) RevokeLink(ctx context.Context, a Actor, linkID uuid.UUID) error {
	if err := a.requireClinical(); err != nil {
		return err
	}
	return wrap(s.inTx(ctx, func(tx pgx.Tx) error {
		var procedure uuid.UUID
		var revoked *time.Time
		err := tx.QueryRow(ctx, `select procedure_id, revoked_at from parent_links where id = $1 and clinic_id = $2 for update`,
			linkID, a.ClinicID).Scan(&procedure, &revoked)
		if err != nil {
			return notFound(err, "link")
		}
		if revoked != nil {
			return nil
		}
		if _, err := tx.Exec(ctx, `update parent_links set revoked_at = now() where id = $1`, linkID); err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditLinkRevoked, TargetKind: "parent_link", TargetID: linkID,
			Detail: map[string]any{"procedure": procedure}})
	}), "revoke link %s", linkID)
}

// Links lists a procedure's links, newest first (never their tokens: only hashes are kept).
func (s *Service) Links(ctx context.Context, a Actor, procedureID uuid.UUID) ([]ParentLink, error) {
	if err := a.requireClinical(); err != nil {
		return nil, err
	}
	var links []ParentLink
	b := &pgx.Batch{}
	queueProcedure(b, a, procedureID, &Procedure{}) // another clinic's procedure: not found, not "no links"
	queueLinks(b, a.ClinicID, procedureID, &links)
	if err := s.sendBatch(ctx, b); err != nil {
		return nil, wrap(err, "links of procedure %s", procedureID)
	}
	return links, nil
}

func queueLinks(b *pgx.Batch, clinic, procedureID uuid.UUID, dst *[]ParentLink) {
	queueRows(b, dst, func(r pgx.CollectableRow) (ParentLink, error) {
		var l ParentLink
		err := r.Scan(&l.ID, &l.ProcedureID, &l.CreatedAt, &l.ExpiresAt, &l.RevokedAt)
		return l, err
	}, `select id, procedure_id, created_at, expires_at, revoked_at from parent_links
		where procedure_id = $1 and clinic_id = $2 order by created_at desc`, procedureID, clinic)
}

// ResolveLink turns a parent token into the parent's Actor. Unknown, revoked and expired
// tokens are all simply not found, so a guesser learns nothing.
func (s *Service) ResolveLink(ctx context.Context, token string) (Actor, error) {
	if len(token) != 43 {
		return Actor{}, Errorf(ENOTFOUND, "link not found")
	}
	var a Actor
	err := s.pool.QueryRow(ctx, `select id, clinic_id, procedure_id from parent_links
		where token_hash = $1 and revoked_at is null and expires_at > $2`, tokenHash(token), s.now()).
		Scan(&a.ID, &a.ClinicID, &a.Procedure)
	if err != nil {
		return Actor{}, notFound(err, "link")
	}
	a.Kind = ActorParent
	return a, nil
}

// ParentActor re-checks a parent session's link (it may have been revoked since the cookie
// was issued) and returns its Actor.
func (s *Service) ParentActor(ctx context.Context, linkID uuid.UUID) (Actor, error) {
	var a Actor
	err := s.pool.QueryRow(ctx, `select id, clinic_id, procedure_id from parent_links
		where id = $1 and revoked_at is null and expires_at > $2`, linkID, s.now()).Scan(&a.ID, &a.ClinicID, &a.Procedure)
	if err != nil {
		return Actor{}, notFound(err, "link")
	}
	a.Kind = ActorParent
	return a, nil
}

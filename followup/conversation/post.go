package conversation

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Post is what the family sends: the text, the concern photos it stored first (through the
// core's upload path, kind followup.PhotoConcern) and, optionally, a client-chosen id that
// makes a retry return the message it posted (like a photo's upload_id).
type Post struct {
	Body     string
	ClientID string
	PhotoIDs []uuid.UUID
}

// Post adds the family's message to its procedure's thread, for a parent actor (its link's
// one procedure). A message is acknowledged only once it is committed; a retry with the same
// ClientID returns it (created false) and adds nothing. A link whose rate limit is used up
// gets ETOOMANY, and nothing is stored; a revoked or expired link is not found. A new message
// tells the clinic (Config.Notices), in its transaction.
func (s *Service) Post(ctx context.Context, a followup.Actor, in Post) (m Message, created bool, err error) {
	if a.Kind != followup.ActorParent {
		return Message{}, false, followup.Errorf(followup.EFORBIDDEN, "only the family writes through its link")
	}
	if in.Body, err = CheckBody(in.Body); err != nil {
		return Message{}, false, err
	}
	if in.ClientID != "" && !followup.ValidUploadID(in.ClientID) {
		return Message{}, false, followup.InvalidField("message_id", "must be 8 to 64 letters, digits, - or _")
	}
	photos := slices.Compact(slices.SortedFunc(slices.Values(in.PhotoIDs), func(x, y uuid.UUID) int { return compareUUID(x, y) }))
	if len(photos) > MaxPhotos {
		return Message{}, false, followup.InvalidField("photo_ids", "at most %d photos per message", MaxPhotos)
	}
	err = followup.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.checkLink(ctx, tx, a); err != nil {
			return err
		}
		if in.ClientID != "" {
			earlier, ok, err := s.byClientID(ctx, tx, a, in.ClientID)
			if err != nil || ok {
				m = earlier
				return err
			}
		}
		if err := s.checkPostable(ctx, tx, a); err != nil {
			return err
		}
		if m, created, err = s.insertPost(ctx, tx, a, in, photos); err != nil || !created || s.notices == nil {
			return err
		}
		return s.notices.FamilyWrote(ctx, tx, a, a.Procedure)
	})
	return m, created, wrap(err, "post to procedure %s", a.Procedure)
}

func compareUUID(x, y uuid.UUID) int {
	for i := range x {
		if x[i] != y[i] {
			return int(x[i]) - int(y[i])
		}
	}
	return 0
}

// checkLink locks the parent link's row for the rest of the transaction and checks that it
// still opens its procedure: posts through one link then run one after another, so that the
// rate limit counts every post committed before this one.
func (s *Service) checkLink(ctx context.Context, tx pgx.Tx, a followup.Actor) error {
	var open bool
	err := tx.QueryRow(ctx, `select revoked_at is null and expires_at > $4 from parent_links
		where id = $1 and procedure_id = $2 and clinic_id = $3 for no key update`, a.ID, a.Procedure, a.ClinicID, s.now()).Scan(&open)
	if err != nil {
		return followup.NotFound(err, "link")
	}
	if !open {
		return followup.Errorf(followup.ENOTFOUND, "link not found")
	}
	return nil
}

// checkPostable refuses a post to a follow-up that ended, or one over the link's rate limit.
func (s *Service) checkPostable(ctx context.Context, tx pgx.Tx, a followup.Actor) error {
	var status string
	var recent int
	err := tx.QueryRow(ctx, `select pr.status, (select count(*) from messages m where m.parent_link_id = $3 and m.created_at > $4)
		from procedures pr where pr.id = $1 and pr.clinic_id = $2`,
		a.Procedure, a.ClinicID, a.ID, s.now().Add(-s.limit.Per)).Scan(&status, &recent)
	if err != nil {
		return followup.NotFound(err, "procedure")
	}
	if status != followup.StatusActive {
		return followup.Errorf(followup.ECONFLICT, "This follow-up has ended; please phone the clinic.")
	}
	if recent >= s.limit.Posts {
		return followup.Errorf(followup.ETOOMANY, "Many messages were sent in the last minutes. Please wait a little, or phone the clinic if it is urgent.")
	}
	return nil
}

// insertPost writes the message, attaches its photos and records it in the audit log (ids
// and counts only). created is false where a concurrent try with the same ClientID committed
// first; its message is returned.
func (s *Service) insertPost(ctx context.Context, tx pgx.Tx, a followup.Actor, in Post, photos []uuid.UUID) (Message, bool, error) {
	m := Message{Author: AuthorFamily, Kind: "family", Body: in.Body, PhotoIDs: photos}
	var client any
	if in.ClientID != "" {
		client = in.ClientID
	}
	err := tx.QueryRow(ctx, `insert into messages (clinic_id, procedure_id, kind, body, parent_link_id, client_id, created_at)
		values ($1, $2, 'family', $3, $4, $5, $6)
		on conflict (procedure_id, client_id) where client_id is not null do nothing returning id, created_at`,
		a.ClinicID, a.Procedure, m.Body, a.ID, client, s.now()).Scan(&m.ID, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		earlier, ok, err := s.byClientID(ctx, tx, a, in.ClientID)
		if err == nil && !ok { // another link of the procedure used the id
			err = followup.InvalidField("message_id", "is taken; choose another")
		}
		return earlier, false, err
	}
	if err != nil {
		return Message{}, false, followup.Unavailable(err)
	}
	if len(photos) > 0 {
		// Only the family's own concern photos of this procedure, not yet sent with another
		// message.
		tag, err := tx.Exec(ctx, `update photos set message_id = $1
			where id = any($2) and procedure_id = $3 and clinic_id = $4 and kind = 'concern' and source = 'family'
				and message_id is null`, m.ID, photos, a.Procedure, a.ClinicID)
		if err != nil {
			return Message{}, false, followup.Unavailable(err)
		}
		if int(tag.RowsAffected()) != len(photos) {
			return Message{}, false, followup.InvalidField("photo_ids", "names a photo that is not a new concern photo of this follow-up")
		}
	} else {
		m.PhotoIDs = []uuid.UUID{}
	}
	err = followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditPosted, TargetKind: "message", TargetID: m.ID,
		Detail: map[string]any{"procedure": a.Procedure, "photos": len(photos)}})
	return m, true, err
}

// byClientID reads the family's message posted with clientID, if any.
func (s *Service) byClientID(ctx context.Context, tx pgx.Tx, a followup.Actor, clientID string) (Message, bool, error) {
	rows, err := tx.Query(ctx, threadSQL+` and m.client_id = $3 and m.parent_link_id = $4`, a.Procedure, a.ClinicID, clientID, a.ID)
	if err != nil {
		return Message{}, false, followup.Unavailable(err)
	}
	ms, err := pgx.CollectRows(rows, scanMessage)
	if err != nil || len(ms) == 0 {
		return Message{}, false, followup.Unavailable(err)
	}
	return ms[0].forFamily(), true, nil
}

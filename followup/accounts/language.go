package accounts

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// AuditLanguageSet is a user choosing the language of their pages.
const AuditLanguageSet = "language_set"

// SetLanguage records the signed-in user's language for the clinic's pages: "en" or
// "zh-CN", or "" to follow the browser's again. It takes effect on the user's next page,
// on every device.
func (s *Service) SetLanguage(ctx context.Context, a followup.Actor, lang string) error {
	if a.Kind != followup.ActorUser {
		return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	if lang != "" && lang != "en" && lang != "zh-CN" {
		return followup.InvalidField("language", "the language must be en or zh-CN")
	}
	var value *string
	if lang != "" {
		value = &lang
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `update users set language = $2 where id = $1 and disabled_at is null`, a.ID, value)
		if err != nil {
			return followup.Unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditLanguageSet, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"language": lang}})
	})
	return wrap(err, "set language")
}

package followup

import (
	"cmp"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Quotas on what one parent link may send, and on one step of a follow-up. A protocol asks for
// a few dozen photos (the PWS protocol: eight steps of up to four views), retakes add some,
// and a family worried about a blister sends a few more: these bounds sit far above any of
// that, and far below what a leaked or forwarded link could otherwise pour into the bucket
// (a thousand photos in ten seconds, about a terabyte an hour). A refused upload tells the
// family to contact the clinic; the clinic can withdraw what was sent and revoke the link.
// Config.Quota sets them; a zero field takes its default.
type PhotoQuota struct {
	LinkPhotos    int64 // photos through one link, ever (default 300)
	LinkBytes     int64 // bytes through one link, ever (default 3 GiB)
	LinkPerMinute int64 // photos through one link in the last minute (default 30)
	StepPhotos    int64 // photos of one step of a follow-up, from anyone (default 60)
	StepBytes     int64 // bytes of one step of a follow-up, from anyone (default 1 GiB)
}

// withDefaults fills the zero fields.
func (q PhotoQuota) withDefaults() PhotoQuota {
	q.LinkPhotos = cmp.Or(q.LinkPhotos, 300)
	q.LinkBytes = cmp.Or(q.LinkBytes, 3<<30)
	q.LinkPerMinute = cmp.Or(q.LinkPerMinute, 30)
	q.StepPhotos = cmp.Or(q.StepPhotos, 60)
	q.StepBytes = cmp.Or(q.StepBytes, 1<<30)
	return q
}

// photoUse is what the link and the step have used.
type photoUse struct {
	linkPhotos, linkBytes, linkLastMinute, stepPhotos, stepBytes int64
}

// queueQuota queues the counts an upload's quotas are checked against: the link's (a family's
// upload) and the step's.
func queueQuota(b *pgx.Batch, a Actor, procedureID uuid.UUID, timepoint string, now time.Time, q *photoUse) {
	if a.Kind == ActorParent {
		b.Queue(`select count(*), coalesce(sum(size_bytes), 0)::bigint, count(*) filter (where received_at > $2)
			from photos where parent_link_id = $1`, a.ID, now.Add(-time.Minute)).
			QueryRow(func(row pgx.Row) error {
				return unavailable(row.Scan(&q.linkPhotos, &q.linkBytes, &q.linkLastMinute))
			})
	}
	b.Queue(`select count(*), coalesce(sum(size_bytes), 0)::bigint from photos
		where procedure_id = $1 and timepoint_key is not distinct from nullif($2, '')`, procedureID, timepoint).
		QueryRow(func(row pgx.Row) error { return unavailable(row.Scan(&q.stepPhotos, &q.stepBytes)) })
}

// check refuses an upload over a quota.
func (q photoUse) check(max PhotoQuota) error {
	switch {
	case q.linkPhotos >= max.LinkPhotos || q.linkBytes >= max.LinkBytes:
		return Errorf(ETOOMANY, "This link has sent as many photos as the clinic takes through it. Please contact the clinic.")
	case q.linkLastMinute >= max.LinkPerMinute:
		return Errorf(ETOOMANY, "Many photos were sent in the last minute. Please wait a minute, or contact the clinic.")
	case q.stepPhotos >= max.StepPhotos || q.stepBytes >= max.StepBytes:
		return Errorf(ETOOMANY, "This step has as many photos as the clinic takes for it. Please contact the clinic.")
	}
	return nil
}

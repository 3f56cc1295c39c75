package export

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// exportItem is one photo to export with what the manifest says about it: nothing that
// identifies the patient.
type exportItem struct {
	photoID   uuid.UUID
	objectKey string
	sha256    []byte
	size      int64
	row       manifestRow
	// order within a subject's series
	performedAt time.Time
	position    int
	received    time.Time
}

// exportItemsSQL reads the scheduled photos of an export of clinic $1, protocol $2 and views
// $3, with the latest grade of each one's timepoint; exportItemsQuery adds the concern photos
// when asked for and the date range's bounds. The grades are read once per procedure (a
// lateral subquery with DISTINCT ON, which the planner cannot fold into a join of every
// clinic's assessments), and the timepoints' order comes from the protocol (exportItems), so
// that the statement reads the clinic's procedures of the protocol and their photos by index,
// not a table of every clinic. A concern photo has no timepoint, so no grade, and joins no
// message: what the family wrote never reaches an export.
const exportItemsSQL = `select ph.id, ph.object_key, ph.sha256, ph.size_bytes, coalesce(ph.timepoint_key, ''), coalesce(ph.view, ''),
		ph.kind = 'concern', ph.width, ph.height, ph.orientation, ph.captured_at, ph.received_at, ph.quality,
		pr.id, pr.patient_id, pr.kind, pr.body_site, pr.performed_at, pr.protocol_version, pa.birth_date,
		coalesce(g.scale_id, ''), coalesce(g.level, '')
	from procedures pr
	join patients pa on pa.id = pr.patient_id and pa.clinic_id = pr.clinic_id
	join photos ph on ph.procedure_id = pr.id
	left join lateral (select distinct on (a.timepoint_key) a.timepoint_key, a.scale_id, a.level from assessments a
		where a.procedure_id = pr.id order by a.timepoint_key, a.created_at desc, a.id desc) g on g.timepoint_key = ph.timepoint_key
	where pr.clinic_id = $1 and pr.protocol_id = $2 and ph.clinic_id = $1
		and ph.status = 'active' and pr.status <> 'withdrawn' and pa.research_consent_at is not null`

// exportPhotoKinds is the photos' condition: the scheduled ones in the chosen views, and the
// concern photos (in no view) only when the researcher asked for them.
const (
	exportScheduledOnly   = ` and ph.kind = 'scheduled' and ph.view = any($3)`
	exportWithUnscheduled = ` and ((ph.kind = 'scheduled' and ph.view = any($3)) or ph.kind = 'concern')`
)

// exportItems selects the photos of consenting patients' procedures of the protocol performed
// in the date range (clinic time), in the chosen views. Withdrawn photos and withdrawn
// procedures are left out.
func (s *Service) exportItems(ctx context.Context, job exportJob, loc *time.Location, key []byte) ([]exportItem, error) {
	sql, args := exportItemsQuery(job, loc)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, followup.Unavailable(err)
	}
	defer rows.Close()
	var items []exportItem
	positions := map[int]map[string]int{} // protocol version -> timepoint key -> position in the schedule
	unplaced := map[uuid.UUID][]int{}     // items of versions no longer installed, by procedure
	for rows.Next() {
		it, procID, err := s.scanItem(rows, job, loc, key)
		if err != nil {
			return nil, followup.Unavailable(err)
		}
		if it.row.Unscheduled {
			items = append(items, it) // placed after the series' scheduled photos (writeArchive)
			continue
		}
		// A procedure's timepoints are its protocol version's, in its order (Enrol writes them
		// so, and they never change).
		order, known := positions[it.row.ProtocolVersion]
		if !known {
			order = s.timepointOrder(job.protocol, it.row.ProtocolVersion)
			positions[it.row.ProtocolVersion] = order
		}
		if pos, ok := order[it.row.Timepoint]; ok {
			it.position = pos
		} else {
			unplaced[procID] = append(unplaced[procID], len(items))
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, followup.Unavailable(err)
	}
	if err := s.placeExportItems(ctx, items, unplaced); err != nil {
		return nil, err
	}
	return items, nil
}

// exportItemsQuery is exportItemsSQL with the job's date range (clinic time) and its
// arguments. The bounds are conditions only when they are set: a statement of optional
// filters ("$3 is null or ...") gets a generic plan that cannot use them.
func exportItemsQuery(job exportJob, loc *time.Location) (string, []any) {
	sql, args := exportItemsSQL+exportScheduledOnly, []any{job.clinic, job.protocol, job.views}
	if job.unscheduled {
		sql = exportItemsSQL + exportWithUnscheduled
	}
	if !job.from.IsZero() {
		args = append(args, job.from.Start(loc))
		sql += ` and pr.performed_at >= $` + strconv.Itoa(len(args))
	}
	if !job.to.IsZero() {
		args = append(args, job.to.AddDays(1).Start(loc))
		sql += ` and pr.performed_at < $` + strconv.Itoa(len(args))
	}
	return sql, args
}

// scanItem reads one row of exportItemsSQL into the item's manifest row: pseudonyms for the
// patient and the procedure, the day offset, the age if asked for and the grade's value. It
// returns the procedure's id too, to place items of versions no longer installed.
func (s *Service) scanItem(rows pgx.Rows, job exportJob, loc *time.Location, key []byte) (exportItem, uuid.UUID, error) {
	var it exportItem
	var procID, patientID uuid.UUID
	var captured *time.Time
	var birth time.Time
	var quality *imagestore.Quality
	r := &it.row
	if err := rows.Scan(&it.photoID, &it.objectKey, &it.sha256, &it.size, &r.Timepoint, &r.View, &r.Unscheduled, &r.Width,
		&r.Height, &r.Orientation, &captured, &it.received, &quality, &procID, &patientID, &r.ProcedureKind, &r.BodySite, &it.performedAt,
		&r.ProtocolVersion, &birth, &r.GradeScale, &r.GradeLevel); err != nil {
		return exportItem{}, uuid.Nil, err
	}
	r.setQuality(quality)
	r.Subject = pseudonym(key, "S", job.clinic, patientID)
	r.Series = pseudonym(key, "P", job.clinic, procID)
	r.Protocol = job.protocol
	r.Recognizable = followup.RecognizableSite(r.BodySite)
	performed := protocols.DateOf(it.performedAt, loc)
	r.Day = protocols.DateOf(photoTime(captured, it.received, it.performedAt), loc).DaysSince(performed)
	if job.ageInMonths {
		months := monthsBetween(protocols.DateOf(birth, time.UTC), performed)
		r.AgeMonths = &months
	}
	if r.GradeScale != "" {
		if sc, err := s.protocols.Scale(r.GradeScale); err == nil {
			if l, ok := sc.Level(r.GradeLevel); ok {
				v := l.Value
				r.GradeValue = &v
			}
		}
	}
	return it, procID, nil
}

// timepointOrder is the position of each timepoint of a protocol version in its schedule;
// nil when the registry no longer has the version.
func (s *Service) timepointOrder(protocol string, version int) map[string]int {
	p, err := s.protocols.Get(protocol, version)
	if err != nil {
		return nil
	}
	order := map[string]int{}
	for i, tp := range p.Timepoints {
		order[tp.Key] = i
	}
	return order
}

// placeExportItems reads the positions of the timepoints of procedures whose protocol version
// the registry no longer has, from their schedules.
func (s *Service) placeExportItems(ctx context.Context, items []exportItem, unplaced map[uuid.UUID][]int) error {
	if len(unplaced) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(unplaced))
	for id := range unplaced {
		ids = append(ids, id)
	}
	rows, err := s.pool.Query(ctx, `select procedure_id, key, position from timepoints where procedure_id = any($1)`, ids)
	if err != nil {
		return followup.Unavailable(err)
	}
	type place struct {
		procedure uuid.UUID
		key       string
	}
	at := map[place]int{}
	for rows.Next() {
		var p place
		var pos int
		if err := rows.Scan(&p.procedure, &p.key, &pos); err != nil {
			return followup.Unavailable(err)
		}
		at[p] = pos
	}
	if err := rows.Err(); err != nil {
		return followup.Unavailable(err)
	}
	for proc, idx := range unplaced {
		for _, i := range idx {
			items[i].position = at[place{proc, items[i].row.Timepoint}]
		}
	}
	return nil
}

// photoTime is when the photo was taken: the capture time the phone recorded when it is
// plausible (not long before the procedure, not after the upload), else the upload time.
func photoTime(captured *time.Time, received, performed time.Time) time.Time {
	if captured != nil && !captured.Before(performed.Add(-48*time.Hour)) && !captured.After(received.Add(time.Hour)) {
		return *captured
	}
	return received
}

// monthsBetween is the age in whole months on the day to of someone born on from.
func monthsBetween(from, to protocols.Date) int {
	m := (to.Year-from.Year)*12 + int(to.Month) - int(from.Month)
	if to.Day < from.Day {
		m--
	}
	return max(0, m)
}

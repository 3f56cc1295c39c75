package followup

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AuditEntry is one audit event as an admin reads it.
type AuditEntry struct {
	At         time.Time
	ActorKind  string
	ActorID    *uuid.UUID
	ActorEmail string // for clinic users
	Action     string
	TargetKind string
	TargetID   *uuid.UUID
	ClientAddr *netip.Addr
	Detail     string // JSON
}

// auditLimit bounds one page of the audit log.
const auditLimit = 500

// AuditPage is one page of a patient's audit log, newest first; Next is "" on the last.
type AuditPage struct {
	Entries []AuditEntry
	Next    string
}

// PatientAudit returns the newest page of PatientAuditPage.
func (s *Service) PatientAudit(ctx context.Context, a Actor, patientID uuid.UUID) ([]AuditEntry, error) {
	p, err := s.PatientAuditPage(ctx, a, patientID, "", auditLimit)
	return p.Entries, err
}

// PatientAuditPage returns a page of the audit events about a patient of the admin's clinic
// (the patient, its procedures, their photos and parent links), newest first, after cursor
// (a Next; "" for the newest), at most limit (1 to auditLimit; 0: auditLimit). Only admins
// read it; another clinic's patient is not found. The log of a patient grows with every view
// of its photos, so it pages by keyset on (at, id) like every list that grows.
func (s *Service) PatientAuditPage(ctx context.Context, a Actor, patientID uuid.UUID, cursor string, limit int) (AuditPage, error) {
	if a.Kind != ActorUser {
		return AuditPage{}, Errorf(EUNAUTHORIZED, "sign in first")
	}
	if a.Role != RoleAdmin {
		return AuditPage{}, Errorf(EFORBIDDEN, "only an admin can read the audit log")
	}
	if limit <= 0 || limit > auditLimit {
		limit = auditLimit
	}
	after := ""
	args := []any{a.ClinicID, patientID, limit + 1}
	if cursor != "" {
		c, err := ParseCursor(cursor)
		if err != nil {
			return AuditPage{}, err
		}
		after = ` and (e.at, e.id) < ($4::timestamptz, $5::bigint)`
		args = append(args, c.At, auditSeq(c.ID))
	}
	if _, err := s.patient(ctx, a.ClinicID, patientID); err != nil {
		return AuditPage{}, wrap(err, "patient audit")
	}
	rows, err := s.pool.Query(ctx, `with targets as (
			select $2::uuid as id
			union all select pr.id from procedures pr where pr.patient_id = $2 and pr.clinic_id = $1
			union all select ph.id from photos ph join procedures pr on pr.id = ph.procedure_id
				where pr.patient_id = $2 and pr.clinic_id = $1
			union all select l.id from parent_links l join procedures pr on pr.id = l.procedure_id
				where pr.patient_id = $2 and pr.clinic_id = $1
		)
		select e.id, e.at, e.actor_kind, e.actor_id, coalesce(u.email, ''), e.action, e.target_kind, e.target_id, e.client_addr, e.detail::text
		from audit_events e left join users u on u.id = e.actor_id and e.actor_kind = 'user'
		where e.clinic_id = $1 and e.target_id in (select id from targets)`+after+`
		order by e.at desc, e.id desc
		limit $3`, args...)
	if err != nil {
		return AuditPage{}, wrap(unavailable(err), "patient audit")
	}
	var seqs []int64
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var seq int64
		err := r.Scan(&seq, &e.At, &e.ActorKind, &e.ActorID, &e.ActorEmail, &e.Action, &e.TargetKind, &e.TargetID, &e.ClientAddr, &e.Detail)
		seqs = append(seqs, seq)
		return e, err
	})
	if err != nil {
		return AuditPage{}, wrap(unavailable(err), "patient audit")
	}
	page := AuditPage{Entries: list}
	if len(list) > limit {
		page.Entries = list[:limit]
		page.Next = Cursor{At: list[limit-1].At, ID: auditCursorID(seqs[limit-1])}.String()
	}
	return page, nil
}

// auditCursorID carries an audit event's id (a bigint) in a Cursor's ID; auditSeq reads it.
func auditCursorID(seq int64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[8:], uint64(seq))
	return id
}

func auditSeq(id uuid.UUID) int64 { return int64(binary.BigEndian.Uint64(id[8:])) }

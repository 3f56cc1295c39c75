package followup

import (
	"context"
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

// PatientAudit returns the newest audit events about a patient of the admin's clinic: the
// patient, its procedures, their photos and parent links. Only admins read it; another
// clinic's patient is not found.
func (s *Service) PatientAudit(ctx context.Context, a Actor, patientID uuid.UUID) ([]AuditEntry, error) {
	if a.Kind != ActorUser {
		return nil, Errorf(EUNAUTHORIZED, "sign in first")
	}
	if a.Role != RoleAdmin {
		return nil, Errorf(EFORBIDDEN, "only an admin can read the audit log")
	}
	if _, err := s.patient(ctx, a.ClinicID, patientID); err != nil {
		return nil, wrap(err, "patient audit")
	}
	rows, err := s.pool.Query(ctx, `with targets as (
			select $2::uuid as id
			union all select pr.id from procedures pr where pr.patient_id = $2 and pr.clinic_id = $1
			union all select ph.id from photos ph join procedures pr on pr.id = ph.procedure_id
				where pr.patient_id = $2 and pr.clinic_id = $1
			union all select l.id from parent_links l join procedures pr on pr.id = l.procedure_id
				where pr.patient_id = $2 and pr.clinic_id = $1
		)
		select e.at, e.actor_kind, e.actor_id, coalesce(u.email, ''), e.action, e.target_kind, e.target_id, e.client_addr, e.detail::text
		from audit_events e left join users u on u.id = e.actor_id and e.actor_kind = 'user'
		where e.clinic_id = $1 and e.target_id in (select id from targets)
		order by e.at desc, e.id desc
		limit $3`, a.ClinicID, patientID, auditLimit)
	if err != nil {
		return nil, wrap(unavailable(err), "patient audit")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.At, &e.ActorKind, &e.ActorID, &e.ActorEmail, &e.Action, &e.TargetKind, &e.TargetID, &e.ClientAddr, &e.Detail)
		return e, err
	})
	return list, wrap(err, "patient audit")
}

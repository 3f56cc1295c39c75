package accounts

import (
	"context"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// SignIn is one sign-in step of a user, passed or failed, as the audit log has it.
type SignIn struct {
	At     time.Time
	Addr   netip.Addr // zero when unknown
	Method string     // MethodPassword, MethodTOTP, MethodRecoveryCode or MethodPasskey
	// SecondStep: the second factor of a sign-in (or a step-up), not its first step.
	SecondStep bool
	Failed     bool
	Reason     string // why it failed: wrong_password, wrong_code, reused_code, ...
}

// MaxRecentSignIns bounds RecentSignIns.
const MaxRecentSignIns = 50

// RecentSignIns returns the signed-in user's last n (1 to MaxRecentSignIns) sign-in steps,
// newest first, failures included, so that the user can spot one that was not theirs.
func (s *Service) RecentSignIns(ctx context.Context, a followup.Actor, n int) ([]SignIn, error) {
	if err := requireUser(a); err != nil {
		return nil, err
	}
	if n < 1 || n > MaxRecentSignIns {
		return nil, followup.InvalidField("n", "must be 1 to %d", MaxRecentSignIns)
	}
	rows, err := s.pool.Query(ctx, `select at, coalesce(host(client_addr), ''), action,
			coalesce(detail->>'method', 'password'), coalesce(detail->>'reason', '')
		from audit_events where clinic_id = $4 and target_kind = 'user' and target_id = $1 and action = any($2)
		order by at desc, id desc limit $3`,
		a.ID, []string{AuditLogin, AuditLoginFailed, AuditSecondFactorVerified, AuditSecondFactorFailed}, n, a.ClinicID)
	if err != nil {
		return nil, wrap(followup.Unavailable(err), "recent sign-ins")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SignIn, error) {
		var si SignIn
		var host, action string
		err := r.Scan(&si.At, &host, &action, &si.Method, &si.Reason)
		si.Addr, _ = netip.ParseAddr(host)
		si.SecondStep = action == AuditSecondFactorVerified || action == AuditSecondFactorFailed
		si.Failed = action == AuditLoginFailed || action == AuditSecondFactorFailed
		return si, err
	})
	return list, wrap(followup.Unavailable(err), "recent sign-ins")
}

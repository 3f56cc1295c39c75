package followup

import (
	"net/netip"

	"github.com/google/uuid"
)

// Roles of clinic users.
const (
	RoleClinician  = "clinician"
	RoleResearcher = "researcher"
	RoleAdmin      = "admin"
)

// Actor kinds, as the audit log records them.
const (
	ActorUser   = "user"
	ActorParent = "parent"
	ActorSystem = "system"
)

// Actor is who is asking: a clinic user, a parent holding a link, or the system itself. Every
// query on clinic data is scoped by ClinicID; a parent is further confined to ProcedureID.
type Actor struct {
	Kind      string
	ID        uuid.UUID // user id or parent link id
	ClinicID  uuid.UUID
	Role      string    // for users
	Procedure uuid.UUID // for parents: the one procedure the link opens
	// Lang is a user's language for the clinic's pages ("en", "zh-CN"), "" when the user has
	// not chosen one (the pages then follow the browser).
	Lang string
	// Addr is the client's address for the audit log; zero when unknown.
	Addr netip.Addr
}

// SystemActor acts for background work of one clinic (or of none).
func SystemActor(clinic uuid.UUID) Actor { return Actor{Kind: ActorSystem, ClinicID: clinic} }

// IsUser reports whether the actor is a signed-in clinic user with one of the roles.
func (a Actor) IsUser(roles ...string) bool {
	if a.Kind != ActorUser {
		return false
	}
	for _, r := range roles {
		if a.Role == r {
			return true
		}
	}
	return len(roles) == 0
}

// canSeeIdentified reports whether the actor may read identified data (names, photos):
// clinicians and admins of the clinic. Researchers see only de-identified exports.
func (a Actor) canSeeIdentified() bool { return a.IsUser(RoleClinician, RoleAdmin) }

func (a Actor) requireClinical() error {
	if a.Kind != ActorUser {
		return Errorf(EUNAUTHORIZED, "sign in first")
	}
	if !a.canSeeIdentified() {
		return Errorf(EFORBIDDEN, "your role cannot do this")
	}
	return nil
}

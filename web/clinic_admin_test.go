package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// userAdminFixture is the clinic fixture with an admin of clinic B.
func userAdminFixture(t *testing.T) (f *clinicFixture, outsiderAdmin string) {
	t.Helper()
	f = newClinicFixture(t)
	outsiderAdmin = "admin-b-" + uuid.NewString()[:8] + "@example.org"
	if _, err := f.srv.cfg.Pool.Exec(clinicCtx(t), `insert into users (clinic_id, email, name, role, password_hash)
		select clinic_id, $1, 'Admin B', 'admin', password_hash from users where email = $2`, outsiderAdmin, f.outsider); err != nil {
		t.Fatal(err)
	}
	var b followup.Clinic
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), `select clinic_id from users where email = $1`, outsiderAdmin).Scan(&b.ID); err != nil {
		t.Fatal(err)
	}
	giveSecondFactor(t, f.acc, b, outsiderAdmin) // admins always need one
	return f, outsiderAdmin
}

func (f *clinicFixture) userID(t *testing.T, email string) string {
	t.Helper()
	u, err := f.acc.UserByEmail(clinicCtx(t), followup.SystemActor(f.clinicianActor.ClinicID), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID.String()
}

func TestClinicUserDisable(t *testing.T) {
	t.Parallel()
	f, _ := userAdminFixture(t)
	clinician := f.client(t)
	clinician.mustLogin(f.clinician)
	admin := f.client(t)
	admin.mustLogin(f.admin)
	id := f.userID(t, f.clinician)

	page := admin.get("/admin/users")
	if page.status != http.StatusOK || !strings.Contains(page.body, `action="/admin/users/`+id+`/disable"`) {
		t.Fatalf("users page = %d, no disable form for the clinician", page.status)
	}
	if strings.Contains(page.body, `action="/admin/users/`+f.userID(t, f.admin)+`/`) {
		t.Error("the users page offers the admin to disable themselves")
	}
	if p := admin.post("/admin/users/"+id+"/disable", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/users" {
		t.Fatalf("disable = %d %s: %s", p.status, p.header.Get("Location"), p.body)
	}
	// The clinician's existing session is refused at once, and signing in again fails.
	if p := clinician.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("disabled user's session: GET / = %d %s, want a redirect to /login", p.status, p.header.Get("Location"))
	}
	if p := clinician.get("/procedures/" + f.procedureID); p.status != http.StatusSeeOther {
		t.Errorf("disabled user's session: timeline = %d, want 303", p.status)
	}
	if p := f.client(t).login(f.clinician, clinicTestPassword); p.status != http.StatusUnauthorized {
		t.Errorf("disabled user's login = %d, want 401", p.status)
	}
	page = admin.get("/admin/users")
	if !strings.Contains(page.body, `action="/admin/users/`+id+`/enable"`) || !strings.Contains(page.body, "User disabled") {
		t.Errorf("users page after disabling: no enable form or no flash")
	}

	if p := admin.post("/admin/users/"+id+"/enable", nil); p.status != http.StatusSeeOther {
		t.Fatalf("enable = %d: %s", p.status, p.body)
	}
	f.client(t).mustLogin(f.clinician)
	// The session from before disabling stays ended.
	if p := clinician.get("/"); p.status != http.StatusSeeOther {
		t.Errorf("old session after re-enabling: GET / = %d, want 303", p.status)
	}
	var n int
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), `select count(*) from audit_events where target_id = $1 and action in ($2, $3)`,
		id, accounts.AuditUserDisabled, accounts.AuditUserEnabled).Scan(&n); err != nil || n != 2 {
		t.Errorf("audit events = %d, %v; want 2", n, err)
	}
}

func TestClinicUserDisableRefused(t *testing.T) {
	t.Parallel()
	f, outsiderAdmin := userAdminFixture(t)
	watchAuthz(f.srv)
	id := f.userID(t, f.clinician)
	path := "/admin/users/" + id + "/disable"
	for _, action := range []string{"/disable", "/enable"} {
		for email, want := range map[string]int{
			f.clinician:   http.StatusForbidden,
			f.researcher:  http.StatusForbidden,
			outsiderAdmin: http.StatusNotFound,
			f.outsider:    http.StatusForbidden,
		} {
			b := f.client(t)
			b.mustLogin(email)
			if p := b.post("/admin/users/"+id+action, nil); p.status != want {
				t.Errorf("%s: %s = %d, want %d", strings.SplitN(email, "-", 2)[0], action, p.status, want)
			}
		}
		anon := f.client(t)
		anon.get("/login")
		if p := anon.post("/admin/users/"+id+action, nil); p.status != http.StatusUnauthorized {
			t.Errorf("without a session: %s = %d, want 401", action, p.status)
		}
	}

	admin := f.client(t)
	admin.mustLogin(f.admin)
	if p := admin.post(path, url.Values{"csrf_token": {""}}); p.status != http.StatusForbidden {
		t.Errorf("without a CSRF token: disable = %d, want 403", p.status)
	}
	if p := admin.post("/admin/users/"+f.userID(t, f.admin)+"/disable", nil); p.status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.body, "your own account") {
		t.Errorf("disable yourself = %d, want 422 with the reason", p.status)
	}
	for _, bad := range []string{"not-a-uuid", uuid.NewString()} {
		if p := admin.post("/admin/users/"+bad+"/disable", nil); p.status != http.StatusNotFound {
			t.Errorf("disable %s = %d, want 404", bad, p.status)
		}
	}
	if p := admin.get("/"); p.status != http.StatusOK {
		t.Errorf("admin still signed in: GET / = %d", p.status)
	}
	// Nobody was disabled by any of these.
	b := f.client(t)
	b.mustLogin(f.clinician)
	var n int
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), `select count(*) from users where disabled_at is not null`).Scan(&n); err != nil || n != 0 {
		t.Errorf("disabled users = %d, %v; want 0", n, err)
	}
}

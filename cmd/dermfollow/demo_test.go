package main

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/protocols"
)

var (
	demoLoginRE    = regexp.MustCompile(`(?m)^  Clinician login: (\S+)$`)
	demoPasswordRE = regexp.MustCompile(`(?m)^  Password: +(\S+)$`)
	demoLinkRE     = regexp.MustCompile(`(?m)^  Parent link: +(http://127\.0\.0\.1:8080/p/(\S+))$`)
)

// demoRun runs `dermfollow demo` and returns what it printed: the login, the password and
// the parent link's token.
func demoRun(t *testing.T, env map[string]string) (out, email, password, token string) {
	t.Helper()
	out, errOut, err := runCmd(t, env, "", "demo")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut)
	}
	login, pw, link := demoLoginRE.FindStringSubmatch(out), demoPasswordRE.FindStringSubmatch(out), demoLinkRE.FindStringSubmatch(out)
	if login == nil || pw == nil || link == nil {
		t.Fatalf("demo printed no login, password or bare parent link:\n%s", out)
	}
	return out, login[1], pw[1], link[2]
}

// The demo gives a newcomer a login that opens the worklist (the demo clinic asks no second
// factor of its clinicians, and the output says so), and a parent link whose follow-up has a
// step due today and a short conversation: the family's message with a concern photo and
// the clinic's reply, both told as the real ones are. Run again, it keeps the data, and the
// new login and link work.
func TestDemoSeedsADueStepAndAConversation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := map[string]string{"DATABASE_URL": pgtest.NewDatabase(t), "DERMFOLLOW_SECRET_KEY": testSecret,
		"DERMFOLLOW_STORE_DIR": t.TempDir(), "DERMFOLLOW_BASE_URL": "http://127.0.0.1:8080"}
	out, email, password, token := demoRun(t, env)
	if !strings.Contains(out, "Second factor:   not required") || !strings.Contains(out, "-require-second-factor=true") ||
		!strings.Contains(out, "due today") || strings.Contains(out, "Note:") {
		t.Errorf("the demo's output does not say what it set:\n%s", out)
	}
	svc, acc, closeDB, err := openAccountService(ctx, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	pool := pgtest.OpenPool(t, env["DATABASE_URL"])
	signIn := func(email, password string) {
		t.Helper()
		res, err := acc.SignIn(ctx, email, password, netip.Addr{})
		if err != nil || res.Next != accounts.StepDone || res.Actor.Role != followup.RoleClinician {
			t.Fatalf("the demo login signs in to %+v (next %q), %v; want a clinician, done", res.Actor, res.Next, err)
		}
	}
	signIn(email, password)

	parent, err := svc.ResolveLink(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	home, err := svc.ParentHome(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, tp := range home.View.Timepoints {
		if tp.Who == "family" && tp.State == protocols.StateOpen {
			open = append(open, tp.Key)
		}
	}
	if len(open) != 1 || open[0] != "day-4" || home.PreferredLanguage != "en" {
		t.Fatalf("the parent link's open family steps = %v (%s), want day-4 in English", open, home.PreferredLanguage)
	}
	if c := home.Clinic; c.Phone != demoContact.Phone || c.Hours != demoContact.Hours {
		t.Errorf("the family's contact line = %+v", c)
	}

	// The thread: the family's message with its concern photo, then the clinic's reply.
	rows, err := pool.Query(ctx, `select m.kind, m.body, (select count(*) from photos ph where ph.message_id = m.id and ph.kind = 'concern')
		from messages m where m.procedure_id = $1 order by m.created_at, m.kind = 'note'`, parent.Procedure)
	if err != nil {
		t.Fatal(err)
	}
	var thread []string
	for rows.Next() {
		var kind, body string
		var photos int
		if err := rows.Scan(&kind, &body, &photos); err != nil {
			t.Fatal(err)
		}
		thread = append(thread, kind+":"+body[:min(len(body), 20)]+":"+strconv.Itoa(photos))
	}
	if rows.Err() != nil || len(thread) != 2 || thread[0] != "family:"+demoFamilyText[:20]+":1" || thread[1] != "note:"+demoClinicReply[:20]+":0" {
		t.Fatalf("the demo's thread = %v, %v", thread, rows.Err())
	}
	// Told as the real ones are: the clinic's inbox of the message, the family of the answer.
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`select count(*) from message_notices where procedure_id = $1 and channel = 'email'`, parent.Procedure); n != 1 {
		t.Errorf("%d inbox notices of the demo's message, want 1", n)
	}
	if n := count(`select count(*) from reminders where procedure_id = $1 and kind = 'answered' and channel = 'email'`, parent.Procedure); n != 1 {
		t.Errorf("%d family notices of the demo's reply, want 1", n)
	}
	// Every photo has its thumbnails, the first family's follow-up too.
	if n := count(`select count(*) from photos where thumbnails_at is null`); n != 0 {
		t.Errorf("%d demo photos without thumbnails", n)
	}
	if n := count(`select count(distinct procedure_id) from photos`); n != 2 {
		t.Errorf("photos of %d procedures, want the two demo follow-ups", n)
	}

	// Again: the data stays, the new login and link work, the same follow-up is still due.
	_, email2, password2, token2 := demoRun(t, env)
	if email2 != email || password2 == password || token2 == token {
		t.Fatalf("the second run printed %s %s %s", email2, password2, token2)
	}
	signIn(email2, password2)
	again, err := svc.ResolveLink(ctx, token2)
	if err != nil || again.Procedure != parent.Procedure {
		t.Fatalf("the second link opens %v (%v), want the same due-today follow-up %v", again.Procedure, err, parent.Procedure)
	}
	if _, err := svc.ResolveLink(ctx, token); followup.ErrorCode(err) != followup.ENOTFOUND {
		t.Errorf("the first run's link still opens after the second: %v", err)
	}
	if n := count(`select count(*) from procedures`); n != 2 {
		t.Errorf("%d procedures after two runs, want 2", n)
	}
	if n := count(`select count(*) from messages where procedure_id = $1`, parent.Procedure); n != 2 || again.Procedure == uuid.Nil {
		t.Errorf("%d messages after two runs, want 2", n)
	}
}

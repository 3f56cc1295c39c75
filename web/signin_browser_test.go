package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/web/browsertest"
)

// Passkeys in Chromium, with the DevTools virtual authenticator (a platform authenticator
// that keeps discoverable credentials and verifies its user): registered at the enrolment
// of an admin who has no second factor, then the second step of a sign-in, then a sign-in
// alone where the clinic allows it; renamed and removed on the account page once an
// authenticator app (set up there, its code computed here) keeps the admin's second factor.

// virtualAuthenticator adds the authenticator to the tab's browser.
func virtualAuthenticator() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	})
}

func TestPasskeysInBrowser(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t, func(o *clinicOptions) { o.passkeys = true })
	if _, err := f.srv.cfg.Pool.Exec(clinicCtx(t), `update clinics set allow_passwordless = true where id = $1`, f.clinicianActor.ClinicID); err != nil {
		t.Fatal(err)
	}
	admin := f.addUser(t, followup.RoleAdmin)
	tab := browsertest.New(t, browsertest.Desktop)
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			browsertest.Screenshot(t, tab, "failed-"+step)
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("`+sel+`").textContent`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	password := func(step string) {
		t.Helper()
		run(step, chromedp.Navigate(f.url+"/login"), chromedp.WaitVisible(`#login-form`),
			chromedp.SendKeys(`#login-form input[name=email]`, admin),
			chromedp.SendKeys(`#login-form input[name=password]`, clinicTestPassword),
			chromedp.Click(`#login-submit`))
	}
	logout := func(step string) {
		t.Helper()
		run(step, chromedp.Click(`#logout`), chromedp.WaitVisible(`#login-form`))
	}

	run("authenticator", virtualAuthenticator())
	password("password")
	run("enrolment", chromedp.WaitVisible(`#passkey-register`))
	browsertest.Screenshot(t, tab, "enrolment")
	run("register",
		chromedp.SendKeys(`#passkey-register input[name=name]`, "Clinic desk"),
		chromedp.Click(`#passkey-register button`),
		chromedp.WaitVisible(`#worklist`))
	u, err := f.acc.UserByEmail(clinicCtx(t), followup.SystemActor(f.clinicianActor.ClinicID), admin)
	if err != nil {
		t.Fatal(err)
	}
	actor := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role}
	if keys, err := f.acc.ListPasskeys(clinicCtx(t), actor); err != nil || len(keys) != 1 || keys[0].Name != "Clinic desk" {
		t.Fatalf("passkeys after registering = %v, %v", keys, err)
	}

	logout("logout after enrolling")
	password("password again")
	run("second factor", chromedp.WaitVisible(`#passkey-verify`))
	browsertest.Screenshot(t, tab, "second-factor")
	run("passkey as second factor", chromedp.Click(`#passkey-verify button`), chromedp.WaitVisible(`#worklist`))

	logout("logout after the second factor")
	run("passwordless", chromedp.WaitVisible(`#passkey-signin`), chromedp.Click(`#passkey-signin button`), chromedp.WaitVisible(`#worklist`))

	// An authenticator app set up on the account page, so that the passkey may go.
	run("account", chromedp.Navigate(f.url+"/account"), chromedp.WaitVisible(`#passkeys`))
	if got := text(`.passkey-name`); got != "Clinic desk" {
		t.Errorf("account lists passkey %q", got)
	}
	run("begin app", chromedp.Click(`#totp-begin button`), chromedp.WaitVisible(`#totp-qr`))
	code := totpCode(t, text(`#totp-secret`), f.clock.Now())
	run("confirm app", chromedp.SendKeys(`#totp-code`, code), chromedp.Click(`#totp-confirm-submit`), chromedp.WaitVisible(`#recovery-codes`))
	run("rename",
		chromedp.Click(`#codes-continue`), chromedp.WaitVisible(`#passkeys`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.si-passkey-item input[name=name]').value = ''`),
		chromedp.SendKeys(`.si-passkey-item input[name=name]`, "Ward laptop"),
		chromedp.Click(`.si-passkey-item form.si-row button`),
		chromedp.WaitVisible(`.cl-flash`))
	if got := text(`.passkey-name`); got != "Ward laptop" {
		t.Errorf("renamed passkey is %q", got)
	}
	browsertest.Screenshot(t, tab, "account")
	run("remove", chromedp.Evaluate[chromedp.Void](`window.beforeRemove = true`), chromedp.Click(`.passkey-remove`))
	waitPage(t, tab, "removed", `!window.beforeRemove && document.readyState === 'complete' && !!document.querySelector('#account-passkeys')`)
	if keys, err := f.acc.ListPasskeys(clinicCtx(t), actor); err != nil || len(keys) != 0 {
		t.Errorf("passkeys after removing = %d, %v", len(keys), err)
	}
	if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('.si-passkey-item').length`)); err != nil || n != 0 {
		t.Errorf("account page lists %d passkeys after removing (%v)", n, err)
	}
}

// The sign-in's pages fit a phone: nothing wider than the screen, in both languages.
func TestSignInPagesOnPhone(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t, func(o *clinicOptions) { o.passkeys = true })
	admin := f.addUser(t, followup.RoleAdmin)
	tab := browsertest.New(t, browsertest.Phone)
	fits := func(step string) {
		t.Helper()
		wide, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if err != nil || wide {
			browsertest.Screenshot(t, tab, "failed-"+step)
			t.Errorf("%s: wider than the phone (%v)", step, err)
		}
	}
	for _, lang := range []string{"en", "zh-CN"} {
		if err := chromedp.Do(tab, chromedp.Navigate(f.url+"/login?lang="+lang), chromedp.WaitVisible(`#login-form`)); err != nil {
			t.Fatal(err)
		}
		fits("sign-in " + lang)
		browsertest.Screenshot(t, tab, "signin-"+lang)
	}
	if err := chromedp.Do(tab,
		chromedp.SendKeys(`#login-form input[name=email]`, admin),
		chromedp.SendKeys(`#login-form input[name=password]`, clinicTestPassword),
		chromedp.Click(`#login-submit`),
		chromedp.WaitVisible(`#totp-begin`),
		chromedp.Click(`#totp-begin button`),
		chromedp.WaitVisible(`#totp-qr`)); err != nil {
		browsertest.Screenshot(t, tab, "failed-enrol")
		t.Fatal(err)
	}
	if lang, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.documentElement.lang`)); err != nil || lang != "zh-CN" {
		t.Errorf("enrolment page in %q, want the language chosen (zh-CN)", lang)
	}
	fits("authenticator app")
	browsertest.Screenshot(t, tab, "totp-zh")
}

// waitPage waits until js holds on the tab's page, through the navigations on the way.
func waitPage(t *testing.T, tab context.Context, step, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			browsertest.Screenshot(t, tab, "failed-"+step)
			t.Fatalf("%s: %q did not hold (%v)", step, js, err)
		}
		time.Sleep(100 * time.Millisecond) // the next look, not a wait for something not to happen
	}
}

package web

import (
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
)

// routes registers every route of the server, in one place.
//
// Every request first runs the server-wide chain (server.go): a request id, panic recovery,
// the request log, security headers, and bounded bodies (limits.go): a body limit and a read
// deadline on every route, text checked once at the boundary, multipart only where a route
// takes uploads. Cross-origin unsafe requests from browsers are refused before Echo sees
// them (http.CrossOriginProtection, in ServeHTTP). Then each route runs its group's chain:
//
//	ops      health checks, nothing more (metrics are served on their own listener)
//	public   static files and the family's link, which anyone may try
//	family   the family's pages: the handler admits only a family session cookie
//	page     the clinic's sign-in pages: a clinic session (possibly anonymous), form tokens
//	signing  page, and a sign-in in progress at the route's step (second factor, enrolment)
//	clinic   the clinic's pages: page, and a signed-in clinic user
//	api      the JSON API: a bearer token, or a signed-in session with the form token
//
// and upload marks the routes that take photos: their bodies get the upload limits and the
// minimum-rate deadline instead of the form limits; stepUp, the actions that ask a session
// for its second factor again when the last check is 15 minutes old (signin_stepup.go). A route without an authorization case in
// the tests fails TestEveryRouteHasAnAuthorizationCase.
func (s *Server) routes() {
	s.familyRoutes()
	s.clinicRoutes()
	s.apiRoutes()
}

// familyRoutes: ops, public and family.
func (s *Server) familyRoutes() {
	e := s.echo
	family := &parentPages{s: s, key: parentKey(s.cfg.SecretKey)}

	// ops
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	// public
	e.GET("/static/*", s.staticFiles())
	e.GET("/p/:token", family.openLink)
	s.uploadRoute("POST", "/p/:token/photos", s.parentUpload) // the contract's one-request upload

	// family
	e.GET("/p/", family.home)
	s.uploadRoute("POST", "/p/photos", family.upload)
	e.GET("/p/photos/:id/thumbnail", family.thumbnail)
	e.GET("/p/messages", family.familyThread)
	// A message may carry a concern photo: its body has the upload limits.
	s.uploadRoute("POST", "/p/messages", family.familyPost)
	resumable := newResumableUploads(s, family) // resumable.go: the tus protocol
	s.uploadRoute("POST", "/p/uploads", resumable.create)
	e.OPTIONS("/p/uploads", resumable.options)
	e.HEAD("/p/uploads/:id", resumable.head)
	s.uploadRoute("PATCH", "/p/uploads/:id", resumable.patch)
	e.DELETE("/p/uploads/:id", resumable.terminate)
}

// clinicRoutes: page and clinic.
func (s *Server) clinicRoutes() {
	e := s.echo
	page := []echo.MiddlewareFunc{s.withSession, s.clinicPageErrors, s.csrfProtect}
	clinic := with(page, s.requirePageUser)
	stepUp := func(chain []echo.MiddlewareFunc, back string) []echo.MiddlewareFunc {
		return with(chain, s.requireStepUp(back))
	}

	// page
	e.GET("/login", s.loginForm, page...)
	e.POST("/login", s.login, page...)
	e.POST("/login/passkey/options", s.passwordlessOptions, page...)
	e.POST("/login/passkey", s.passwordless, page...)

	// clinic
	e.POST("/logout", s.logout, clinic...)
	e.POST("/logout-everywhere", s.logoutEverywhere, clinic...)
	e.POST("/account/language", s.languageSet, clinic...)
	e.GET("/", s.worklist, clinic...)
	e.GET("/patients/new", s.patientForm, clinic...)
	e.POST("/patients", s.patientCreate, clinic...)
	e.GET("/patients/:id", s.patientShow, clinic...)
	e.GET("/patients/:id/enrol", s.enrolForm, clinic...)
	e.POST("/patients/:id/enrol", s.enrolSave, clinic...)
	e.GET("/patients/:id/audit", s.patientAudit, clinic...)
	e.GET("/procedures/:id", s.timeline, clinic...)
	e.GET("/procedures/:id/compare", s.compare, clinic...)
	e.POST("/procedures/:id/links", s.linkCreate, clinic...)
	e.POST("/procedures/:id/links/:link/revoke", s.linkRevoke, clinic...)
	s.uploadRoute("POST", "/procedures/:id/photos", s.clinicUpload, clinic...)
	e.POST("/procedures/:id/assessments", s.assessSave, clinic...)
	e.POST("/procedures/:id/retakes", s.retakeSave, clinic...)
	e.POST("/procedures/:id/messages", s.messageReply, clinic...)
	e.POST("/procedures/:id/messages/:mid/handled", s.messageHandle, clinic...)
	e.POST("/procedures/:id/photos/withdraw", s.photoWithdraw, clinic...)
	e.GET("/procedures/:id/reminders", s.reminderOutbox, clinic...)
	e.POST("/procedures/:id/reminders", s.reminderSend, clinic...)
	e.POST("/procedures/:id/reminders/settings", s.reminderSwitch, clinic...)
	e.GET("/exports", s.exportPage, clinic...)
	e.POST("/exports", s.exportPageStart, stepUp(clinic, "/exports")...)
	e.GET("/admin/users", s.usersList, clinic...)
	e.POST("/admin/users", s.userCreate, stepUp(clinic, "/admin/users")...)
	e.POST("/admin/users/:id/disable", s.userSetDisabled(true), stepUp(clinic, "/admin/users")...)
	e.POST("/admin/users/:id/enable", s.userSetDisabled(false), stepUp(clinic, "/admin/users")...)
	e.GET("/admin/settings", s.settingsPage, clinic...)
	e.POST("/admin/settings/contact", s.settingsContactSave, stepUp(clinic, "/admin/settings")...)
	e.POST("/admin/settings/sign-in", s.signInSettingsSave, stepUp(clinic, "/admin/settings")...)
	s.accountRoutes(page, clinic)
}

// accountRoutes: signing in after the password, and the account's own pages (clinic).
func (s *Server) accountRoutes(page, clinic []echo.MiddlewareFunc) {
	e := s.echo
	factor := with(page, s.requirePending(accounts.StepSecondFactor))
	enrol := with(page, s.requirePending(accounts.StepEnrol))
	stepUp := func(back string) []echo.MiddlewareFunc { return with(clinic, s.requireStepUp(back)) }

	// signing in
	e.GET("/login/second-factor", s.secondFactorForm, factor...)
	e.POST("/login/second-factor", s.secondFactor, factor...)
	e.POST("/login/second-factor/passkey/options", s.secondFactorPasskeyOptions, factor...)
	e.POST("/login/second-factor/passkey", s.secondFactorPasskey, factor...)
	e.GET("/login/enrol", s.setupForm, enrol...)
	e.POST("/login/enrol/totp", s.totpBegin, enrol...)
	e.POST("/login/enrol/totp/confirm", s.totpConfirm, enrol...)
	e.POST("/login/enrol/passkey/options", s.passkeyRegisterOptions, enrol...)
	e.POST("/login/enrol/passkey", s.passkeyRegister, enrol...)

	// clinic
	e.GET("/verify", s.verifyForm, clinic...)
	e.POST("/verify", s.verify, clinic...)
	e.POST("/verify/passkey/options", s.verifyPasskeyOptions, clinic...)
	e.POST("/verify/passkey", s.verifyPasskey, clinic...)
	e.GET("/account", s.accountPage, clinic...)
	e.POST("/account/totp", s.totpBegin, clinic...)
	e.POST("/account/totp/confirm", s.totpConfirm, clinic...)
	e.POST("/account/totp/remove", s.totpRemove, stepUp("/account")...)
	e.POST("/account/recovery-codes", s.recoveryCodes, stepUp("/account")...)
	e.POST("/account/passkey/options", s.passkeyRegisterOptions, clinic...)
	e.POST("/account/passkey", s.passkeyRegister, clinic...)
	e.POST("/account/passkeys/:id/rename", s.passkeyRename, clinic...)
	e.POST("/account/passkeys/:id/remove", s.passkeyRemove, stepUp("/account")...)
	e.GET("/account/tokens", s.tokensPage, clinic...)
	e.POST("/account/tokens", s.tokenIssue, stepUp("/account/tokens")...)
	e.POST("/account/tokens/:id/revoke", s.tokenRevoke, clinic...)
}

// with is chain followed by mw, never sharing chain's array.
func with(chain []echo.MiddlewareFunc, mw ...echo.MiddlewareFunc) []echo.MiddlewareFunc {
	return append(chain[:len(chain):len(chain)], mw...)
}

// apiRoutes: api.
func (s *Server) apiRoutes() {
	api := s.echo.Group("/api/v1", s.requireUser)
	api.POST("/patients", s.apiCreatePatient)
	api.GET("/patients", s.apiListPatients)
	api.GET("/patients/:id", s.apiGetPatient)
	api.POST("/procedures", s.apiEnrol)
	api.GET("/procedures", s.apiListProcedures)
	api.GET("/procedures/:id", s.apiGetProcedure)
	api.POST("/procedures/:id/status", s.apiSetStatus)
	api.POST("/procedures/:id/parent-links", s.apiCreateLink)
	api.GET("/procedures/:id/parent-links", s.apiListLinks)
	api.DELETE("/parent-links/:id", s.apiRevokeLink)
	api.POST("/procedures/:id/assessments", s.apiAssess)
	api.GET("/procedures/:id/messages", s.apiThread)
	api.POST("/procedures/:id/messages", s.apiMessage)
	api.POST("/procedures/:id/messages/:mid/handled", s.apiMessageHandled)
	s.uploadRoute("POST", "/api/v1/procedures/:id/photos", s.apiUploadPhoto, s.requireUser)
	api.GET("/photos/:id/original", s.apiPhoto(followup.VariantOriginal))
	api.GET("/photos/:id/thumbnail", s.apiPhoto(""))
	api.POST("/photos/:id/withdraw", s.apiWithdrawPhoto)
	api.GET("/procedures/:id/reminders", s.apiReminders)
	api.POST("/procedures/:id/reminders", s.apiSendReminder)
	api.POST("/procedures/:id/reminders/settings", s.apiReminderSwitch)
	api.GET("/reminder-settings", s.apiGetReminderSettings)
	api.PUT("/reminder-settings", s.apiReminderSettings)
	api.GET("/contact-settings", s.apiGetContactSettings)
	api.PUT("/contact-settings", s.apiContactSettings)
	api.POST("/exports", s.apiStartExport, s.requireStepUp(""))
	api.GET("/exports", s.apiListExports)
	api.GET("/exports/:id", s.apiGetExport)
	api.GET("/exports/:id/download", s.apiDownloadExport, s.requireStepUp(""))
}

// uploadRoute registers a route that takes a photo upload (multipart, up to the upload
// limit, at the minimum rate: see limits.go).
func (s *Server) uploadRoute(method, path string, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	s.uploads[method+" "+path] = true
	s.echo.Add(method, path, h, mw...)
}

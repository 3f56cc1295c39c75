package web

import (
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
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
//	clinic   the clinic's pages: page, and a signed-in clinic user
//	api      the JSON API: a bearer token, or a signed-in session with the form token
//
// and upload marks the routes that take photos: their bodies get the upload limits and the
// minimum-rate deadline instead of the form limits. A route without an authorization case in
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
	clinic := append(page[:len(page):len(page)], s.requirePageUser)

	// page
	e.GET("/login", s.loginForm, page...)
	e.POST("/login", s.login, page...)

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
	e.POST("/procedures/:id/photos/withdraw", s.photoWithdraw, clinic...)
	e.GET("/procedures/:id/reminders", s.reminderOutbox, clinic...)
	e.POST("/procedures/:id/reminders", s.reminderSend, clinic...)
	e.POST("/procedures/:id/reminders/settings", s.reminderSwitch, clinic...)
	e.GET("/exports", s.exportPage, clinic...)
	e.POST("/exports", s.exportPageStart, clinic...)
	e.GET("/admin/users", s.usersList, clinic...)
	e.POST("/admin/users", s.userCreate, clinic...)
	e.POST("/admin/users/:id/disable", s.userSetDisabled(true), clinic...)
	e.POST("/admin/users/:id/enable", s.userSetDisabled(false), clinic...)
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
	api.POST("/exports", s.apiStartExport)
	api.GET("/exports", s.apiListExports)
	api.GET("/exports/:id", s.apiGetExport)
	api.GET("/exports/:id/download", s.apiDownloadExport)
}

// uploadRoute registers a route that takes a photo upload (multipart, up to the upload
// limit, at the minimum rate: see limits.go).
func (s *Server) uploadRoute(method, path string, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	s.uploads[method+" "+path] = true
	s.echo.Add(method, path, h, mw...)
}

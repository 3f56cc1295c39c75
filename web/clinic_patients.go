package web

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/worklist"
	"github.com/dermfollow/dermfollow/protocols"
)

// worklistData is the worklist page: the filter links with their counts, the rows and the
// links to the pages around this one.
type worklistData struct {
	worklist.Page
	State, Search    string
	Filters          []worklistFilter
	PrevURL, NextURL string
	Protocols        *protocols.Registry
}

// protocolTitle is the title of the protocol id (its latest version's) in lang, or the id
// for a protocol no longer in the registry.
func protocolTitle(r *protocols.Registry, id, lang string) string {
	if r != nil {
		if p, err := r.Latest(id); err == nil {
			return p.Title.In(lang)
		}
	}
	return id
}

type worklistFilter struct {
	State, Label string
	Count        int
	Current      bool
}

// worklistLabels are the catalogue keys of the worklist's filters.
var worklistLabels = map[string]string{
	worklist.NewMessage:     "cl_state_new_message",
	worklist.Overdue:        "cl_state_overdue",
	worklist.DueToday:       "cl_state_due_today",
	worklist.Unreviewed:     "cl_state_unreviewed",
	worklist.ReminderFailed: "cl_state_reminder_failed",
}

// worklist is GET /: the clinic's active follow-ups, most urgent first, a page at a time
// (after= and before= hold the cursors of the pages around). Researchers, who see no
// identified data, get their own start page.
func (s *Server) worklist(c echo.Context) error {
	a := actorOf(c)
	if a.IsUser(followup.RoleResearcher) {
		return s.page(c, http.StatusOK, tr(clinicLang(c), "cl_title_research"), researcherPage())
	}
	f := worklist.Filter{State: c.QueryParam("state"), Search: c.QueryParam("q"),
		After: c.QueryParam("after"), Before: c.QueryParam("before")}
	if len(f.Search) > 200 {
		return followup.Errorf(followup.EINVALID, "the search is too long")
	}
	wl, err := s.worklists.ClinicWorklist(c.Request().Context(), a, f)
	if err != nil {
		return err
	}
	d := worklistData{Page: wl, State: f.State, Search: f.Search, Protocols: s.svc.Protocols()}
	lang := clinicLang(c)
	d.Filters = append(d.Filters, worklistFilter{State: "", Label: tr(lang, "cl_state_all"), Count: wl.Total, Current: f.State == ""})
	for _, st := range worklist.States() {
		d.Filters = append(d.Filters, worklistFilter{State: st, Label: tr(lang, worklistLabels[st]), Count: wl.Counts[st], Current: f.State == st})
	}
	if wl.Prev != "" {
		d.PrevURL = worklistURL(f.State, f.Search, "before", wl.Prev)
	}
	if wl.Next != "" {
		d.NextURL = worklistURL(f.State, f.Search, "after", wl.Next)
	}
	return s.page(c, http.StatusOK, tr(lang, "cl_title_worklist"), worklistPage(d))
}

// worklistFilterURL is the worklist filtered to state, keeping the search.
func worklistFilterURL(state, search string) string {
	return "/?state=" + url.QueryEscape(state) + "&q=" + url.QueryEscape(search)
}

// currentClass marks the current one of a row of links.
func currentClass(current bool) string {
	if current {
		return " current"
	}
	return ""
}

// procStatus is a procedure's status in the page's language (an unknown one as it is).
func procStatus(ctx context.Context, status string) string {
	return procStatusIn(pageOf(ctx).Lang, status)
}

// procStatusIn is a procedure's status in words in lang.
func procStatusIn(lang, status string) string {
	return trOr(lang, "cl_proc_status_"+status, status)
}

// yesNo writes a recorded yes or no.
func yesNo(ctx context.Context, b bool) string {
	if b {
		return msg(ctx, "cl_yes")
	}
	return msg(ctx, "cl_no")
}

// worklistURL is the worklist page with the filter and search, at a cursor.
func worklistURL(state, search, dir, cursor string) string {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if search != "" {
		q.Set("q", search)
	}
	q.Set(dir, cursor)
	return "/?" + q.Encode()
}

type patientFormData struct {
	In    followup.NewPatient
	Error string
}

func (s *Server) patientForm(c echo.Context) error {
	if err := requireClinicalPage(c); err != nil {
		return err
	}
	return s.page(c, http.StatusOK, tr(clinicLang(c), "cl_title_new_patient"), patientNewPage(patientFormData{In: followup.NewPatient{PreferredLanguage: "en"}}))
}

// requireClinicalPage refuses researchers before a form is even shown.
func requireClinicalPage(c echo.Context) error {
	if !actorOf(c).IsUser(followup.RoleClinician, followup.RoleAdmin) {
		return followup.Errorf(followup.EFORBIDDEN, "Your role cannot open identified pages.")
	}
	return nil
}

func (s *Server) patientCreate(c echo.Context) error {
	in := followup.NewPatient{
		DisplayName: c.FormValue("display_name"), BirthDate: c.FormValue("birth_date"), MRN: c.FormValue("mrn"),
		GuardianEmail: c.FormValue("guardian_email"), GuardianPhone: c.FormValue("guardian_phone"),
		PreferredLanguage: c.FormValue("preferred_language"), ResearchConsent: c.FormValue("research_consent") == "yes",
	}
	p, err := s.svc.CreatePatient(c.Request().Context(), actorOf(c), in)
	if followup.ErrorCode(err) == followup.EINVALID || followup.ErrorCode(err) == followup.ECONFLICT {
		return s.page(c, http.StatusUnprocessableEntity, tr(clinicLang(c), "cl_title_new_patient"), patientNewPage(patientFormData{In: in, Error: followup.ErrorMessage(err)}))
	}
	if err != nil {
		return err
	}
	s.flash(c, "Patient saved.")
	return c.Redirect(http.StatusSeeOther, "/patients/"+p.ID.String())
}

type patientData struct {
	Patient    followup.Patient
	Procedures []followup.ProcedureSummary
	Protocols  *protocols.Registry
	Location   *time.Location // the clinic's time zone
}

// pathPatient loads the patient the path's :id names, in the actor's clinic.
func (s *Server) pathPatient(c echo.Context) (followup.Patient, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return followup.Patient{}, err
	}
	return s.svc.Patient(c.Request().Context(), actorOf(c), id)
}

func (s *Server) patientShow(c echo.Context) error {
	p, err := s.pathPatient(c)
	if err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actorOf(c)
	procs, err := s.svc.ListProcedures(ctx, a, followup.ProcedureFilter{PatientID: p.ID})
	if err != nil {
		return err
	}
	clinic, err := s.svc.Clinic(ctx, a.ClinicID)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, p.DisplayName, patientPage(patientData{Patient: p, Procedures: procs, Protocols: s.svc.Protocols(),
		Location: clinic.Location}))
}

// enrolData is the enrolment form; with Preview set, the schedule it would get.
type enrolData struct {
	Patient    followup.Patient
	Protocols  []*protocols.Protocol
	BodySites  []string
	Protocol   string
	BodySite   string
	Performed  string // datetime-local, clinic time
	Zone       string
	Preview    []followup.Timepoint
	Chosen     *protocols.Protocol
	Error      string
	PerformedZ string // RFC 3339, what is saved
}

// latestProtocols lists the newest version of each protocol: what new procedures get.
func (s *Server) latestProtocols() []*protocols.Protocol {
	var out []*protocols.Protocol
	for _, p := range s.svc.Protocols().Protocols() {
		if n := len(out); n > 0 && out[n-1].ID == p.ID {
			out[n-1] = p
			continue
		}
		out = append(out, p)
	}
	return out
}

// enrolForm is the enrolment form and, once filled in (GET with preview=1), the schedule the
// procedure would get, to check before saving.
func (s *Server) enrolForm(c echo.Context) error {
	p, err := s.pathPatient(c)
	if err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actorOf(c)
	clinic, err := s.svc.Clinic(ctx, a.ClinicID)
	if err != nil {
		return err
	}
	d := enrolData{Patient: p, Protocols: s.latestProtocols(), BodySites: followup.BodySites(), Zone: clinic.TimeZone,
		Protocol: c.QueryParam("protocol"), BodySite: c.QueryParam("body_site"), Performed: c.QueryParam("performed_at")}
	if d.Performed == "" {
		d.Performed = time.Now().In(clinic.Location).Format("2006-01-02T15:04")
	}
	if c.QueryParam("preview") == "" {
		return s.page(c, http.StatusOK, tr(clinicLang(c), "cl_enrol_procedure"), enrolPage(d))
	}
	performed, perr := time.ParseInLocation("2006-01-02T15:04", d.Performed, clinic.Location)
	if perr != nil {
		d.Error = "performed_at: enter the date and time of the procedure"
		return s.page(c, http.StatusUnprocessableEntity, tr(clinicLang(c), "cl_enrol_procedure"), enrolPage(d))
	}
	d.PerformedZ = performed.Format(time.RFC3339)
	proto, tps, err := s.svc.PreviewSchedule(ctx, a, followup.NewProcedure{PatientID: p.ID.String(), Protocol: d.Protocol,
		BodySite: d.BodySite, PerformedAt: d.PerformedZ})
	if followup.ErrorCode(err) == followup.EINVALID {
		d.Error = followup.ErrorMessage(err)
		return s.page(c, http.StatusUnprocessableEntity, tr(clinicLang(c), "cl_enrol_procedure"), enrolPage(d))
	}
	if err != nil {
		return err
	}
	d.Chosen, d.Preview = proto, tps
	return s.page(c, http.StatusOK, tr(clinicLang(c), "cl_enrol_procedure"), enrolPage(d))
}

func (s *Server) enrolSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actorOf(c)
	e, err := s.svc.Enrol(ctx, a, followup.NewProcedure{PatientID: id.String(), Protocol: c.FormValue("protocol"),
		BodySite: c.FormValue("body_site"), PerformedAt: c.FormValue("performed_at")})
	if err != nil {
		return err
	}
	s.flash(c, "Procedure enrolled. Create the family's link below.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+e.ID.String())
}

// messageBadge says how many of the family's messages wait for an answer, and for how long,
// in the page's language.
func messageBadge(ctx context.Context, it worklist.Item) string {
	s := msgn(ctx, "cl_new_messages_n", it.Unanswered)
	if it.WaitingSince != nil {
		s += " · " + msgf(ctx, "cl_waiting", waited(ctx, time.Since(*it.WaitingSince)))
	}
	return s
}

// waited writes a wait in the unit a clinician reads at a glance.
func waited(ctx context.Context, d time.Duration) string {
	switch {
	case d < time.Hour:
		return msgn(ctx, "cl_wait_minutes", max(1, int(d.Minutes())))
	case d < 48*time.Hour:
		return msgn(ctx, "cl_wait_hours", int(d.Hours()))
	}
	return msgn(ctx, "cl_wait_days", int(d.Hours()/24))
}

package web

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// newUploadID makes the idempotency key of one upload form.
func newUploadID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "web-" + hex.EncodeToString(b)
}

// clinicUpload takes a clinic photo from the procedure page's form (multipart, streamed by
// takeUpload) and returns to the page.
func (s *Server) clinicUpload(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, _, err := s.takeUpload(c, actorOf(c), id); err != nil {
		return err
	}
	s.flash(c, "Photo received. Its thumbnail appears in a moment.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String())
}

func (s *Server) assessSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	_, err = s.svc.Assess(c.Request().Context(), actorOf(c), id, followup.NewAssessment{
		Timepoint: c.FormValue("timepoint"), PhotoID: c.FormValue("photo_id"), Level: c.FormValue("level"), Note: c.FormValue("note")})
	if err != nil {
		return err
	}
	s.flash(c, "Grade saved.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#grades")
}

// photoWithdraw takes a photo out of the record (kept, marked, audited; see
// followup.WithdrawPhoto).
func (s *Server) photoWithdraw(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	photo, err := uuid.Parse(c.FormValue("photo_id"))
	if err != nil {
		return followup.Errorf(followup.EINVALID, "photo_id: choose a photo")
	}
	if _, err := s.svc.WithdrawPhoto(c.Request().Context(), actorOf(c), id, photo, strings.TrimSpace(c.FormValue("reason"))); err != nil {
		return err
	}
	s.flash(c, "Photo withdrawn: it stays stored and audited, marked withdrawn, and leaves the exports.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#withdraw")
}

func (s *Server) retakeSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	_, err = s.svc.SendMessage(c.Request().Context(), actorOf(c), id, followup.NewMessage{
		Kind: "retake", PhotoID: c.FormValue("photo_id"), Body: c.FormValue("body")})
	if err != nil {
		return err
	}
	s.flash(c, "Retake request sent: the family sees it on their page.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#retake")
}

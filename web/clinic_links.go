package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"rsc.io/qr"

	"github.com/dermfollow/dermfollow/followup"
)

type linkData struct {
	procedurePage
	Link   followup.ParentLink
	QRPath string
	QRSize int
}

// linkCreate makes a parent link and shows it this once, as text and as a QR code drawn as
// inline SVG from the code's modules (the token is not stored, so it cannot be shown again).
func (s *Server) linkCreate(c echo.Context) error {
	pp, err := s.loadProcedure(c)
	if err != nil {
		return err
	}
	l, err := s.svc.CreateLink(c.Request().Context(), actorOf(c), pp.View.ID, c.FormValue("rotate") == "yes")
	if err != nil {
		return err
	}
	code, err := qr.Encode(l.URL, qr.M)
	if err != nil {
		return err
	}
	var path strings.Builder
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if code.Black(x, y) {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x+4, y+4) // a 4-module quiet zone
			}
		}
	}
	return s.page(c, http.StatusCreated, tr(clinicLang(c), "cl_title_parent_link"), linkPage(linkData{procedurePage: pp, Link: l, QRPath: path.String(), QRSize: code.Size + 8}))
}

func (s *Server) linkRevoke(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	linkID, err := pathID(c, "link")
	if err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actorOf(c)
	// The link must belong to this procedure: the URL names both.
	links, err := s.svc.Links(ctx, a, id)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(links, func(l followup.ParentLink) bool { return l.ID == linkID }) {
		return followup.Errorf(followup.ENOTFOUND, "link not found")
	}
	if err := s.svc.RevokeLink(ctx, a, linkID); err != nil {
		return err
	}
	s.flash(c, "Link revoked: it no longer opens.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#links")
}

package web

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

type comparePhoto struct {
	followup.Photo
	Label     string // the step's name
	ViewLabel string // the view's
	Received  string // when it arrived, in the clinic's zone
	Taken     string // when it was taken (takenAt); "" if unknown
}

type photoOption struct {
	ID    uuid.UUID
	Label string
}

type compareData struct {
	procedurePage
	Options []photoOption // every active photo, to choose either side
	A, B    comparePhoto
	Steps   []compareStep
	Prev    string
	Next    string
	SameSet bool
}

type compareStep struct {
	URL, Label string
	Current    bool
}

// compare shows two photos side by side: by default the first photo of a view (the baseline)
// against its latest; ?a= and ?b= choose any two photos of the procedure.
// photoParam is the procedure's photo the query parameter names, nil when it names none; an
// id that is not one of its photos is not found.
func (pp *procedurePage) photoParam(c echo.Context, param string) (*followup.Photo, error) {
	v := c.QueryParam(param)
	if v == "" {
		return nil, nil
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return nil, followup.Errorf(followup.ENOTFOUND, "photo not found")
	}
	i := slices.IndexFunc(pp.View.Photos, func(p followup.Photo) bool { return p.ID == id })
	if i < 0 {
		return nil, followup.Errorf(followup.ENOTFOUND, "photo not found")
	}
	return &pp.View.Photos[i], nil
}

func (s *Server) compare(c echo.Context) error {
	pp, err := s.loadProcedure(c)
	if err != nil {
		return err
	}
	photos := pp.activePhotos()
	a, err := pp.photoParam(c, "a")
	if err != nil {
		return err
	}
	b, err := pp.photoParam(c, "b")
	if err != nil {
		return err
	}
	if len(photos) == 0 && (a == nil || b == nil) {
		return followup.Errorf(followup.ENOTFOUND, "%s", tr(pp.Lang, "cl_no_photos_to_compare"))
	}
	if b == nil {
		// By default the latest scheduled photo: a concern photo is compared when chosen.
		view := photos[len(photos)-1].View
		if k := slices.IndexFunc(photos, func(p *followup.Photo) bool { return p.Kind == followup.PhotoConcern }); k > 0 {
			view = photos[k-1].View
		}
		if a != nil {
			view = a.View
		}
		for i := range photos {
			if photos[i].View == view {
				b = photos[i]
			}
		}
	}
	if a == nil {
		for i := range photos {
			if photos[i].View == b.View {
				a = photos[i]
				break
			}
		}
	}
	d := compareData{procedurePage: pp, A: pp.comparePhoto(a), B: pp.comparePhoto(b)}
	for _, p := range photos {
		d.Options = append(d.Options, photoOption{ID: p.ID, Label: pp.photoChoice(p)})
	}
	base := "/procedures/" + pp.View.ID.String() + "/compare?a=" + a.ID.String() + "&b="
	var same []*followup.Photo
	for _, p := range photos {
		if p.View == b.View {
			same = append(same, p)
		}
	}
	for i, p := range same {
		cur := p.ID == b.ID
		d.Steps = append(d.Steps, compareStep{URL: base + url.QueryEscape(p.ID.String()), Label: pp.photoLabel(p), Current: cur})
		if cur {
			if i > 0 {
				d.Prev = base + same[i-1].ID.String()
			}
			if i+1 < len(same) {
				d.Next = base + same[i+1].ID.String()
			}
		}
	}
	return s.page(c, http.StatusOK, tr(pp.Lang, "cl_title_compare"), comparePage(d))
}

func (pp *procedurePage) comparePhoto(p *followup.Photo) comparePhoto {
	return comparePhoto{Photo: *p, Label: pp.photoLabel(p), ViewLabel: pp.viewLabel(p.View), Received: pp.at(p.ReceivedAt), Taken: pp.takenAt(p)}
}

// takenAt is when a photo was taken as the camera says: an instant, in the clinic's zone, where
// the camera recorded its offset; else the camera's own clock as it recorded it.
func (pp *procedurePage) takenAt(p *followup.Photo) string {
	switch {
	case p.CapturedAt == nil:
		return ""
	case p.CapturedOffset:
		return pp.at(*p.CapturedAt)
	}
	return clinicTime(*p.CapturedAt, time.UTC)
}

package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// The JSON API under /api/v1. Every handler takes its actor from the authentication
// middleware; the follow-up core scopes every query by the actor's clinic.

// maxJSONBody bounds JSON request bodies.
const maxJSONBody = 64 << 10

func bindJSON(c echo.Context, into any) error {
	req := c.Request()
	if mt := strings.TrimSpace(strings.SplitN(req.Header.Get("Content-Type"), ";", 2)[0]); mt != "application/json" {
		return &echo.HTTPError{Code: http.StatusUnsupportedMediaType, Message: "send JSON with Content-Type: application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &echo.HTTPError{Code: http.StatusRequestEntityTooLarge, Message: "the request body is too large"}
		}
		return badRequest("the body is not valid JSON for this request: " + jsonProblem(err))
	}
	if dec.More() {
		return badRequest("the body has more than one JSON value")
	}
	return checkJSONText(reflect.ValueOf(into), "")
}

// checkJSONText applies checkText to every string a decoded JSON body holds, naming the
// field by its JSON name.
func checkJSONText(v reflect.Value, field string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkJSONText(v.Elem(), field)
	case reflect.String:
		return checkText(field, v.String())
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkJSONText(v.Index(i), field); err != nil {
				return err
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if err := checkJSONText(it.Key(), field); err != nil {
				return err
			}
			if err := checkJSONText(it.Value(), field); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if err := checkJSONText(v.Field(i), name); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the client's values.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "field " + ute.Field + " must be " + ute.Type.String()
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	return "syntax error"
}

func pathID(c echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		// Not an id this server could have made: the same answer as an unknown one.
		return uuid.Nil, followup.Errorf(followup.ENOTFOUND, "not found")
	}
	return id, nil
}

func (s *Server) apiCreatePatient(c echo.Context) error {
	var in followup.NewPatient
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	p, err := s.svc.CreatePatient(c.Request().Context(), actorOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

func (s *Server) apiGetPatient(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	p, err := s.svc.Patient(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) apiEnrol(c echo.Context) error {
	var in followup.NewProcedure
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	e, err := s.svc.Enrol(c.Request().Context(), actorOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}

func (s *Server) apiGetProcedure(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	v, err := s.svc.ProcedureView(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

func (s *Server) apiSetStatus(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Status string `json:"status"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if err := s.svc.SetStatus(c.Request().Context(), actorOf(c), id, in.Status); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": in.Status})
}

func (s *Server) apiCreateLink(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Rotate bool `json:"rotate"`
	}
	if c.Request().ContentLength != 0 {
		if err := bindJSON(c, &in); err != nil {
			return err
		}
	}
	l, err := s.svc.CreateLink(c.Request().Context(), actorOf(c), id, in.Rotate)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, l)
}

func (s *Server) apiListLinks(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	links, err := s.svc.Links(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"links": links})
}

func (s *Server) apiRevokeLink(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.svc.RevokeLink(c.Request().Context(), actorOf(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) apiAssess(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in followup.NewAssessment
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	a, err := s.svc.Assess(c.Request().Context(), actorOf(c), id, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a)
}

// apiWithdrawPhoto is POST /api/v1/photos/{id}/withdraw {"reason": "..."}.
func (s *Server) apiWithdrawPhoto(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	p, err := s.svc.WithdrawPhoto(c.Request().Context(), actorOf(c), uuid.Nil, id, strings.TrimSpace(in.Reason))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// apiUploadPhoto takes clinic photos (baseline, right after treatment) through the API.
func (s *Server) apiUploadPhoto(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return s.receivePhoto(c, actorOf(c), id)
}

func (s *Server) apiPhoto(variant string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		v := variant
		if v == "" { // the thumbnail route: ?size=small (default) or large
			v = c.QueryParam("size")
			if v == "" {
				v = followup.VariantSmall
			}
			if v != followup.VariantSmall && v != followup.VariantLarge {
				return badRequest("size must be small or large")
			}
		}
		return s.sendPhoto(c, actorOf(c), id, v)
	}
}

// sendPhoto streams a photo. Personal data: never cached by shared caches, and private to the
// browser only briefly (thumbnails are immutable: the key derives from the content).
func (s *Server) sendPhoto(c echo.Context, a followup.Actor, id uuid.UUID, variant string) error {
	r, p, err := s.svc.OpenPhoto(c.Request().Context(), a, id, variant)
	if err != nil {
		if followup.ErrorCode(err) == followup.EUNAVAILABLE {
			c.Response().Header().Set("Retry-After", "2")
		}
		return err
	}
	defer r.Close()
	h := c.Response().Header()
	h.Set("Cache-Control", "private, max-age=300")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if variant == followup.VariantOriginal {
		h.Set("Content-Length", itoa(p.Size))
	}
	return c.Stream(http.StatusOK, p.ContentType, r)
}

// parentUpload is POST /p/{token}/photos: the family's upload through its link.
func (s *Server) parentUpload(c echo.Context) error {
	a, err := s.parentFromToken(c, c.Param("token"))
	if err != nil {
		return err
	}
	return s.receivePhoto(c, a, a.Procedure)
}

// parentFromToken resolves a link token, rate-limiting addresses that send wrong ones. A valid
// link always resolves, however many wrong ones its address sent: families behind one NAT (a
// clinic's Wi-Fi, a carrier's) share an address. Only the failures count, and an address
// that spent its budget hears 429 for wrong links instead of 404.
func (s *Server) parentFromToken(c echo.Context, token string) (followup.Actor, error) {
	addr := c.RealIP()
	a, err := s.svc.ResolveLink(c.Request().Context(), token)
	if err != nil {
		if followup.ErrorCode(err) == followup.ENOTFOUND {
			if ok, wait := s.linkFailures.Take(addr); !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
				return followup.Actor{}, &echo.HTTPError{Code: http.StatusTooManyRequests, Message: "Too many wrong links from this address; wait a few minutes."}
			}
			return followup.Actor{}, followup.Errorf(followup.ENOTFOUND, "This link is not valid. Please contact your clinic for a new one.")
		}
		return followup.Actor{}, err
	}
	a.Addr = realIPAddr(c)
	return a, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

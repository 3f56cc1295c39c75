package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// The API's lists for clinic systems: GET /api/v1/procedures and GET /api/v1/patients. They page
// by keyset: each page's next is an opaque cursor to send back as cursor, empty on the last
// page. docs/api.md describes them.

// apiListProcedures is GET /api/v1/procedures?state=&protocol=&updated_since=&limit=&cursor=.
func (s *Server) apiListProcedures(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	f := followup.ProcedureListFilter{State: c.QueryParam("state"), Protocol: c.QueryParam("protocol"), Limit: limit,
		Cursor: c.QueryParam("cursor")}
	if v := c.QueryParam("updated_since"); v != "" {
		if f.UpdatedSince, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return followup.Errorf(followup.EINVALID, "updated_since: must be a time as RFC 3339, e.g. 2026-11-23T09:15:00Z")
		}
	}
	page, err := s.svc.ProcedureList(c.Request().Context(), actorOf(c), f)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, page)
}

// apiListPatients is GET /api/v1/patients?search=&limit=&cursor=.
func (s *Server) apiListPatients(c echo.Context) error {
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	search := c.QueryParam("search")
	if len(search) > 200 {
		return followup.Errorf(followup.EINVALID, "search: must be at most 200 bytes")
	}
	page, err := s.svc.PatientList(c.Request().Context(), actorOf(c),
		followup.PatientListFilter{Search: search, Limit: limit, Cursor: c.QueryParam("cursor")})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, page)
}

// queryLimit reads ?limit= (0 when absent: the list's default); the list checks its range.
func queryLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, followup.Errorf(followup.EINVALID, "limit: must be a number from 1 to %d", followup.ProcedureListMax)
	}
	return n, nil
}

package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// errorBody is the one shape of every JSON error: {"error": {"code": "...", "message": "..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusOf maps application error codes to HTTP statuses, in one place.
var statusOf = map[string]int{
	followup.EINVALID:      http.StatusUnprocessableEntity,
	followup.ENOTFOUND:     http.StatusNotFound,
	followup.ECONFLICT:     http.StatusConflict,
	followup.EUNAUTHORIZED: http.StatusUnauthorized,
	followup.EFORBIDDEN:    http.StatusForbidden,
	followup.EUNAVAILABLE:  http.StatusServiceUnavailable,
	followup.EINTERNAL:     http.StatusInternalServerError,
}

// codeOfStatus names the code for statuses that Echo itself produces (unknown route, wrong
// method, body too large).
func codeOfStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return followup.ENOTFOUND
	case http.StatusUnauthorized:
		return followup.EUNAUTHORIZED
	case http.StatusForbidden:
		return followup.EFORBIDDEN
	case http.StatusConflict:
		return followup.ECONFLICT
	case http.StatusServiceUnavailable:
		return followup.EUNAVAILABLE
	}
	if status >= 500 {
		return followup.EINTERNAL
	}
	return followup.EINVALID
}

// handleError writes err as the JSON error shape. Internal errors are logged by the request
// logger and never shown.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := errorResponse(err)
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, body)
}

func errorResponse(err error) (int, errorBody) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg, _ := he.Message.(string)
		if msg == "" {
			msg = http.StatusText(he.Code)
		}
		return he.Code, errorBody{errorDetail{Code: codeOfStatus(he.Code), Message: msg}}
	}
	code := followup.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return status, errorBody{errorDetail{Code: code, Message: followup.ErrorMessage(err)}}
}

package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/language"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
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
	followup.ETOOMANY:      http.StatusTooManyRequests,
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
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_format"
	case http.StatusTooManyRequests:
		return "rate_limited"
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
	status, body := errorResponse(err, requestLang(c))
	if c.Request().Method == http.MethodHead {
		c.NoContent(status)
		return
	}
	c.JSON(status, body)
}

func errorResponse(err error, lang string) (int, errorBody) {
	if followup.ErrorCode(err) == followup.ETOOMANY && lang != "en" {
		// The family reads this one in its language; the API's clinic callers in English.
		return http.StatusTooManyRequests, errorBody{errorDetail{Code: followup.ETOOMANY, Message: tr(lang, "err_quota")}}
	}
	var re *imagestore.RejectError
	if errors.As(err, &re) {
		status, code := rejectStatus(re.Reason)
		return status, errorBody{errorDetail{Code: code, Message: re.Message(lang)}}
	}
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

// pageLanguages are the languages the pages speak, English first: the fallback.
var (
	pageLanguages = []string{protocols.EN, protocols.ZH}
	langMatcher   = language.NewMatcher([]language.Tag{language.English, language.SimplifiedChinese})
)

// requestLang picks English or Simplified Chinese from Accept-Language, by its weights (the
// pages refine this with the patient's preference and a switch): "en;q=0.1, zh-CN;q=0.9" is
// Chinese.
func requestLang(c echo.Context) string {
	tags, _, err := language.ParseAcceptLanguage(c.Request().Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return protocols.EN
	}
	_, i, conf := langMatcher.Match(tags...)
	if conf == language.No {
		return protocols.EN
	}
	return pageLanguages[i]
}

package web

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// The protocol's HTTP details that tusd does not know of: the creation's metadata, and the
// response as tusd writes it.

// parseUploadMetadata reads timepoint, view, upload_id and kind from Upload-Metadata
// (comma-separated "key base64(value)" pairs): a scheduled photo names its step and view, a
// concern photo (kind "concern") neither. Other keys, such as a file name a client adds, are
// ignored and never stored.
func parseUploadMetadata(h string) (followup.PhotoUpload, error) {
	var up followup.PhotoUpload
	if len(h) > 2048 {
		return up, badRequest("Upload-Metadata is too long")
	}
	seen := map[string]bool{}
	for _, pair := range strings.Split(h, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		key, enc, _ := strings.Cut(pair, " ")
		switch key {
		case "timepoint", "view", "upload_id", "kind":
		default:
			continue
		}
		if seen[key] {
			return up, badRequest("Upload-Metadata names " + key + " twice")
		}
		seen[key] = true
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil {
			return up, badRequest("Upload-Metadata: the value of " + key + " is not base64")
		}
		if len(raw) > 128 {
			return up, badRequest("the field " + key + " is too long")
		}
		v := strings.TrimSpace(string(raw))
		if err := checkText(key, v); err != nil {
			return up, err
		}
		switch key {
		case "timepoint":
			up.Timepoint = v
		case "view":
			up.View = v
		case "upload_id":
			up.UploadID = v
		case "kind":
			up.Kind = v
		}
	}
	switch {
	case up.UploadID == "":
		return up, badRequest("Upload-Metadata must give upload_id")
	case up.Kind == followup.PhotoConcern:
		if up.Timepoint != "" || up.View != "" {
			return up, followup.InvalidField("timepoint", "a photo outside the schedule names no step and no view")
		}
	case up.Kind != "" && up.Kind != followup.PhotoScheduled:
		return up, followup.InvalidField("kind", "must be scheduled or concern")
	case up.Timepoint == "" || up.View == "":
		return up, badRequest("Upload-Metadata must give timepoint, view and upload_id (upload_id alone with kind concern)")
	}
	return up, nil
}

// tusWriter is the response as tusd sees it. Read deadlines further than a second away are
// dropped: an upload route's deadline moves with the bytes received (limits.go), and tusd's
// idle deadline would replace it; nearer ones (tusd interrupting a read at once) pass. Write
// deadlines are the idle writer's (limits.go). Location is made relative, so that it names
// the address the client used, whatever proxy is in front. tusd's own refusals (a wrong
// offset, say), which it writes as text, are written in the JSON error shape.
type tusWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	// status is set when a text error of tusd's is being rewritten.
	status int
}

func (w *tusWriter) SetReadDeadline(t time.Time) error {
	if time.Until(t) > time.Second {
		return nil
	}
	return w.rc.SetReadDeadline(t)
}

func (w *tusWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *tusWriter) WriteHeader(status int) {
	h := w.Header()
	if loc := h.Get("Location"); loc != "" {
		if i := strings.Index(loc, resumableBase); i > 0 {
			h.Set("Location", loc[i:])
		}
	}
	if status >= 400 && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		w.status = status
		h.Set("Content-Type", echo.MIMEApplicationJSON)
		h.Del("Content-Length")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *tusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		return w.ResponseWriter.Write(p)
	}
	// "ERR_CODE: message\n", once.
	_, msg, _ := strings.Cut(strings.TrimSpace(string(p)), ": ")
	b, _ := json.Marshal(errorBody{errorDetail{Code: codeOfStatus(w.status), Message: msg}})
	w.status = 0
	if _, err := w.ResponseWriter.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *tusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

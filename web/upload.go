package web

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// maxUploadParts bounds the multipart parts of an upload: four fields are expected.
const maxUploadParts = 8

// receivePhoto takes one upload and answers in JSON: 201 with the new photo, or 200 with the
// photo an earlier try of the same upload_id stored.
func (s *Server) receivePhoto(c echo.Context, a followup.Actor, procedureID uuid.UUID) error {
	p, created, err := s.takeUpload(c, a, procedureID)
	if err != nil {
		return err
	}
	if created {
		return c.JSON(http.StatusCreated, p)
	}
	return c.JSON(http.StatusOK, p)
}

// takeUpload streams one multipart upload (fields timepoint, view, upload_id and file) into a
// spool (memory from a bounded budget, else a temp file), then hands it to the follow-up core,
// which sanitizes and stores it. Echo's FormFile would buffer 32 MiB in memory per request,
// without a bound on their number. created is false when
// an earlier try of the same upload_id already stored the photo. It writes no response, so
// form posts (pages) and the JSON API answer each in their own way.
func (s *Server) takeUpload(c echo.Context, a followup.Actor, procedureID uuid.UUID) (photo followup.Photo, created bool, err error) {
	req := c.Request()
	mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return followup.Photo{}, false, badRequest("send the photo as multipart/form-data with the fields timepoint, view, upload_id and file")
	}
	link := uuid.Nil
	if a.Kind == followup.ActorParent {
		link = a.ID
	}
	release, ok := s.uploadSlots.take(c.RealIP(), link)
	if !ok {
		c.Response().Header().Set("Retry-After", "30")
		return followup.Photo{}, false, &echo.HTTPError{Code: http.StatusTooManyRequests, Message: tr(chooseLang(c, ""), "err_busy")}
	}
	defer release()
	lim := s.limits
	body := http.MaxBytesReader(c.Response(), req.Body, lim.MaxBytes+64<<10)
	// multipart reads through a 4 KiB buffer: in front of it, one that takes what the socket
	// has in one read, not a read per 4 KiB.
	mr := multipart.NewReader(bufio.NewReaderSize(body, 256<<10), params["boundary"])

	var up followup.PhotoUpload
	var sp *spool
	var size int64
	var stored *followup.Photo // an earlier try of this upload_id stored it
	defer func() {
		if sp != nil {
			sp.close()
		}
	}()
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return followup.Photo{}, false, uploadReadError(err)
		}
		if parts >= maxUploadParts {
			return followup.Photo{}, false, badRequest("too many form parts: send only timepoint, view, upload_id and file")
		}
		switch name := part.FormName(); name {
		case "timepoint", "view", "upload_id":
			v, err := io.ReadAll(io.LimitReader(part, 129))
			if err != nil {
				return followup.Photo{}, false, uploadReadError(err)
			}
			if len(v) > 128 {
				return followup.Photo{}, false, badRequest("the field " + name + " is too long")
			}
			val := strings.TrimSpace(string(v))
			switch name {
			case "timepoint":
				up.Timepoint = val
			case "view":
				up.View = val
			case "upload_id":
				up.UploadID = val
			}
		case "file":
			if sp != nil || stored != nil {
				return followup.Photo{}, false, badRequest("send one file per upload")
			}
			// A retry of an upload that was stored is answered with the stored photo. Its
			// bytes are read and dropped first: a server that answers before the body is in
			// closes the connection under a client still sending (or waiting for 100
			// Continue), which then sees a reset instead of the answer.
			if followup.ValidUploadID(up.UploadID) {
				p, ok, err := s.svc.PhotoByUploadID(req.Context(), a, procedureID, up.UploadID)
				if err != nil {
					return followup.Photo{}, false, err
				}
				if ok {
					if _, err := io.Copy(io.Discard, io.LimitReader(part, lim.MaxBytes+1)); err != nil {
						return followup.Photo{}, false, uploadReadError(err)
					}
					stored = &p
					part.Close()
					continue
				}
			}
			sp = newSpool(s.uploadMemory)
			n, err := sp.fill(io.LimitReader(part, lim.MaxBytes+1))
			var re readError
			if errors.As(err, &re) {
				return followup.Photo{}, false, uploadReadError(re.err)
			}
			if err != nil {
				return followup.Photo{}, false, err
			}
			if n > lim.MaxBytes {
				return followup.Photo{}, false, tooLarge(c, lim.MaxBytes)
			}
			size = n
		default:
			return followup.Photo{}, false, badRequest("unexpected form field " + quoteField(name))
		}
		part.Close()
	}
	switch {
	case stored != nil:
		return *stored, false, nil
	case sp == nil || size == 0:
		return followup.Photo{}, false, badRequest("the file is missing or empty")
	case up.Timepoint == "" || up.View == "" || up.UploadID == "":
		return followup.Photo{}, false, badRequest("timepoint, view and upload_id are required")
	}
	return s.svc.AddPhoto(req.Context(), a, procedureID, up, sp, size, lim)
}

func uploadReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &echo.HTTPError{Code: http.StatusRequestEntityTooLarge, Message: "The photo is too large.", Internal: err}
	}
	return badRequest("the upload was cut off or is not valid multipart/form-data")
}

func tooLarge(c echo.Context, max int64) error {
	return &echo.HTTPError{Code: http.StatusRequestEntityTooLarge,
		Message: "The photo is too large (at most " + mib(max) + "). Send it again in a smaller size."}
}

func mib(n int64) string { return strconv.FormatInt(n>>20, 10) + " MB" }

func badRequest(msg string) error {
	return &echo.HTTPError{Code: http.StatusBadRequest, Message: msg}
}

func quoteField(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 32 || r == '"' {
			return -1
		}
		return r
	}, s) + `"`
}

// rejectStatus maps the sanitizer's refusals to the statuses the contract promises.
func rejectStatus(r imagestore.Reason) (int, string) {
	switch r {
	case imagestore.ReasonTooLarge, imagestore.ReasonTooManyPixels:
		return http.StatusRequestEntityTooLarge, "too_large"
	case imagestore.ReasonHEIC:
		return http.StatusUnsupportedMediaType, "heic"
	case imagestore.ReasonUnsupported, imagestore.ReasonUnsupportedJPEG:
		return http.StatusUnsupportedMediaType, "unsupported_format"
	}
	return http.StatusUnprocessableEntity, "bad_image"
}

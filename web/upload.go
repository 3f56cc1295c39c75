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

	u := &uploadParts{}
	defer u.close()
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
		if err := s.readUploadPart(c, a, procedureID, part, u); err != nil {
			return followup.Photo{}, false, err
		}
		part.Close()
	}
	switch {
	case u.stored != nil:
		return *u.stored, false, nil
	case u.sp == nil || u.size == 0:
		return followup.Photo{}, false, badRequest("the file is missing or empty")
	case u.up.UploadID == "" || u.up.Kind != followup.PhotoConcern && (u.up.Timepoint == "" || u.up.View == ""):
		return followup.Photo{}, false, badRequest("timepoint, view and upload_id are required (upload_id alone with kind=concern)")
	}
	return s.svc.AddPhoto(req.Context(), a, procedureID, u.up, u.sp, u.size, s.limits)
}

// uploadParts is what an upload's parts have given so far.
type uploadParts struct {
	up     followup.PhotoUpload
	sp     *spool // the file's bytes
	size   int64
	stored *followup.Photo // an earlier try of this upload_id stored it
}

func (u *uploadParts) close() {
	if u.sp != nil {
		u.sp.close()
	}
}

// readUploadPart reads one part of an upload into u: a field, or the file.
func (s *Server) readUploadPart(c echo.Context, a followup.Actor, procedureID uuid.UUID, part *multipart.Part, u *uploadParts) error {
	switch name := part.FormName(); name {
	case "timepoint", "view", "upload_id", "kind":
		v, err := io.ReadAll(io.LimitReader(part, 129))
		if err != nil {
			return uploadReadError(err)
		}
		if len(v) > 128 {
			return badRequest("the field " + name + " is too long")
		}
		val := strings.TrimSpace(string(v))
		switch name {
		case "timepoint":
			u.up.Timepoint = val
		case "view":
			u.up.View = val
		case "upload_id":
			u.up.UploadID = val
		case "kind":
			u.up.Kind = val
		}
		return nil
	case "file":
		if u.sp != nil || u.stored != nil {
			return badRequest("send one file per upload")
		}
		return s.readUploadFile(c, a, procedureID, part, u)
	default:
		return badRequest("unexpected form field " + quoteField(name))
	}
}

// readUploadFile spools the file part, or, for a retry of an upload that was stored, reads it
// through and keeps the stored photo to answer with. The retry's bytes are read and dropped
// before the answer: a server that answers before the body is in closes the connection under a
// client still sending (or waiting for 100 Continue), which then sees a reset instead.
func (s *Server) readUploadFile(c echo.Context, a followup.Actor, procedureID uuid.UUID, part *multipart.Part, u *uploadParts) error {
	lim := s.limits
	if followup.ValidUploadID(u.up.UploadID) {
		p, ok, err := s.svc.PhotoByUploadID(c.Request().Context(), a, procedureID, u.up.UploadID)
		if err != nil {
			return err
		}
		if ok {
			if _, err := io.Copy(io.Discard, io.LimitReader(part, lim.MaxBytes+1)); err != nil {
				return uploadReadError(err)
			}
			u.stored = &p
			return nil
		}
	}
	u.sp = newSpool(s.uploadMemory)
	n, err := u.sp.fill(io.LimitReader(part, lim.MaxBytes+1))
	var re readError
	if errors.As(err, &re) {
		return uploadReadError(re.err)
	}
	if err != nil {
		return err
	}
	if n > lim.MaxBytes {
		return tooLarge(c, lim.MaxBytes)
	}
	u.size = n
	return nil
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

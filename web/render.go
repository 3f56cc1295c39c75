package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
)

// Static files are embedded: the binary is the whole deployment, and there is no front-end
// build step. The pages are templ components (*.templ beside their handlers), compiled into
// the *_templ.go files that `go tool templ generate` writes and `make templ-check` checks.
//
//go:embed static
var assets embed.FS

// pageCSP is the Content-Security-Policy of every HTML page: no inline script or style, nothing
// from elsewhere; images may also be blob: URLs (the camera preview and the upload preview).
const pageCSP = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// pageInfo is what every part of a page may need besides its own data: the language, the
// signed-in user, the session's form token, the title and the flash. It travels in the
// context templ hands to each component (pageOf), so a form deep in a page needs no argument
// for its token.
type pageInfo struct {
	Lang  string
	Title string
	User  followup.Actor
	CSRF  string
	Flash string
	// Switch is the same page in the other language, for pages that offer the switch.
	Switch string
	// Path is the page's own address (a GET's), where a form may come back to.
	Path string
}

type pageInfoKey struct{}

func withPage(ctx context.Context, p pageInfo) context.Context {
	return context.WithValue(ctx, pageInfoKey{}, &p)
}

// noPage is the pageInfo outside a page: the zero value.
var noPage pageInfo

// pageOf is the page's pageInfo (the zero value outside a page), for reading: a pointer, as
// a page asks for its language once per text, and the info is a few hundred bytes to copy.
func pageOf(ctx context.Context) *pageInfo {
	if p, ok := ctx.Value(pageInfoKey{}).(*pageInfo); ok {
		return p
	}
	return &noPage
}

// render writes the component into a buffer first, so that an error never sends half a page,
// and sends it with the page headers: personal pages are never cached anywhere.
func (s *Server) render(c echo.Context, status int, info pageInfo, page templ.Component) error {
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(buf)
	if err := page.Render(withPage(c.Request().Context(), info), buf); err != nil {
		return fmt.Errorf("web: render %s: %w", info.Title, err)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	// With its length known the page goes out in one response, not in chunks.
	h.Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	return c.HTMLBlob(status, buf.Bytes())
}

// Page buffers are reused: a page grows its buffer through a dozen sizes to about 20 KB, and
// that growth was the largest allocation of a timeline request. A buffer that grew past
// maxPooledPage (an unusually long page) is left to the garbage collector.
const maxPooledPage = 1 << 20

var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putPageBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledPage {
		return
	}
	b.Reset()
	pageBuffers.Put(b)
}

// staticFiles serves web/static under /static/ with a long cache life: files are named by
// content where it matters, and nothing personal is there.
func (s *Server) staticFiles() echo.HandlerFunc {
	sub, _ := fs.Sub(assets, "static")
	fileServer := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return func(c echo.Context) error {
		// Files only: a folder (or the root) is not found rather than listed.
		name := strings.TrimPrefix(c.Param("*"), "/")
		if st, err := fs.Stat(sub, name); name == "" || err != nil || st.IsDir() {
			return echo.ErrNotFound
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Security-Policy", "default-src 'none'")
		fileServer.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// Templates and static files are embedded: the binary is the whole deployment, and there is
// no front-end build step.
//
//go:embed templates static
var assets embed.FS

// pageCSP is the Content-Security-Policy of every HTML page: no inline script or style, nothing
// from elsewhere; images may also be blob: URLs (the camera preview and the upload preview).
const pageCSP = "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// templates holds every page (templates/AREA/PAGE.html), each parsed once together with the
// shared layout and partials (templates/*.html). Each page is its own template set, so pages
// can define the same block names without clashing.
type templates struct {
	once  sync.Once
	err   error
	pages map[string]*template.Template
}

// templateFuncs are available to every template.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"join": strings.Join,
	}
}

func (t *templates) load() error {
	t.once.Do(func() {
		t.pages = map[string]*template.Template{}
		shared, err := fs.Glob(assets, "templates/*.html")
		if err != nil {
			t.err = err
			return
		}
		pages, err := fs.Glob(assets, "templates/*/*.html")
		if err != nil {
			t.err = err
			return
		}
		for _, p := range pages {
			name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
			tpl, err := template.New(name).Funcs(templateFuncs()).ParseFS(assets, append(append([]string{}, shared...), p)...)
			if err != nil {
				t.err = fmt.Errorf("web: template %s: %w", p, err)
				return
			}
			t.pages[name] = tpl
		}
	})
	return t.err
}

// render executes the page template name (e.g. "parent/home") into a buffer first, so that an
// error never sends half a page, and sends it with the page headers: personal pages are never
// cached anywhere.
func (s *Server) render(c echo.Context, status int, name string, data any) error {
	if err := s.tpl.load(); err != nil {
		return err
	}
	tpl, ok := s.tpl.pages[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(buf)
	if err := tpl.ExecuteTemplate(buf, "layout", data); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
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

package web

import (
	"context"
	"embed"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/labstack/echo/v4"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/dermfollow/dermfollow/protocols"
)

// The pages' message catalogue: every string a page shows, in English and Simplified Chinese,
// in go-i18n message files (web/locales/active.<lang>.toml) that translators edit without
// touching Go. Keys are identifiers, so that a page writes T["key"] (or msg(ctx, "key")). Texts
// with a %s are filled in by the handler (trf), never by the pages; a plural (a table with
// one and other) is chosen by its count (trn). TestCatalogueComplete checks that both
// languages have every key and the same verbs.
//
// The files are read once, at start: catalogue holds every message's text by language
// (a plural's "other" form too), so that a page's strings cost a map lookup, not a
// template; only trn goes through go-i18n's localizer, for the plural rules.
//
//go:embed locales/*.toml
var localeFiles embed.FS

var (
	bundle     = i18n.NewBundle(language.English)
	catalogue  = loadCatalogue(bundle)
	localizers = map[string]*i18n.Localizer{
		protocols.EN: i18n.NewLocalizer(bundle, protocols.EN),
		protocols.ZH: i18n.NewLocalizer(bundle, protocols.ZH),
	}
)

// localeFile is the message file of each page language.
var localeFile = map[string]string{protocols.EN: "locales/active.en.toml", protocols.ZH: "locales/active.zh-CN.toml"}

// loadCatalogue reads the message files into b and returns their texts by language. A file
// that does not parse is a build defect: the server does not start.
func loadCatalogue(b *i18n.Bundle) map[string]map[string]string {
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	out := map[string]map[string]string{}
	for lang, name := range localeFile {
		raw, err := localeFiles.ReadFile(name)
		if err != nil {
			panic(err)
		}
		mf, err := b.ParseMessageFileBytes(raw, name)
		if err != nil {
			panic(fmt.Sprintf("web: message file %s: %v", name, err))
		}
		texts := make(map[string]string, len(mf.Messages))
		for _, m := range mf.Messages {
			texts[m.ID] = m.Other
		}
		out[lang] = texts
	}
	return out
}

// pageLang normalises a language tag to one the catalogue has ("" when it has none).
func pageLang(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	switch {
	case strings.HasPrefix(tag, "zh"):
		return protocols.ZH
	case strings.HasPrefix(tag, "en"):
		return protocols.EN
	}
	return ""
}

// tr returns the text of key in lang, falling back to English.
func tr(lang, key string) string {
	if s, ok := catalogue[lang][key]; ok {
		return s
	}
	return catalogue[protocols.EN][key]
}

// trf fills a catalogue text's %s verbs.
func trf(lang, key string, args ...any) string { return fmt.Sprintf(tr(lang, key), args...) }

// tr1 is trf with one string for a text's one %s, as the timeline fills a text per column or
// photo: a concatenation rather than fmt's reflection and boxing. A text with any other verb
// goes through fmt.
func tr1(lang, key, arg string) string { return fill1(tr(lang, key), arg) }

// fill1 is fmt.Sprintf(text, arg) for a string arg.
func fill1(text, arg string) string {
	if i := strings.Index(text, "%s"); i >= 0 && strings.Count(text, "%") == 1 {
		return text[:i] + arg + text[i+2:]
	}
	return fmt.Sprintf(text, arg)
}

// trn is the plural key for count n in lang ("1 new photo", "19 new photos"): the message's
// {{.Count}} is n.
func trn(lang, key string, n int) string {
	l := localizers[lang]
	if l == nil {
		l = localizers[protocols.EN]
	}
	s, err := l.Localize(&i18n.LocalizeConfig{MessageID: key, PluralCount: n, TemplateData: map[string]int{"Count": n}})
	if err != nil { // a key missing from the files: TestCatalogueComplete catches it first
		return strconv.Itoa(n) + " " + key
	}
	return s
}

// msgf is msg with its %s verbs filled.
func msgf(ctx context.Context, key string, args ...any) string {
	return trf(pageOf(ctx).Lang, key, args...)
}

// msgn is the plural key for count n in the page's language.
func msgn(ctx context.Context, key string, n int) string { return trn(pageOf(ctx).Lang, key, n) }

// msgOr is the text of key in the page's language, or fallback when the catalogue has no key
// (a code the pages have no words for yet).
func msgOr(ctx context.Context, key, fallback string) string {
	return trOr(pageOf(ctx).Lang, key, fallback)
}

// trOr is the text of key in lang, or fallback when the catalogue has no key.
func trOr(lang, key, fallback string) string {
	if s, ok := catalogue[lang][key]; ok {
		return s
	}
	if s, ok := catalogue[protocols.EN][key]; ok {
		return s
	}
	return fallback
}

// msg is the text of key in the page's language, for the pages' components.
func msg(ctx context.Context, key string) string { return tr(pageOf(ctx).Lang, key) }

// langCookie remembers the language switch of the pages.
const langCookie = "df_lang"

// chooseLang picks the page language: the switch on the page (?lang=, remembered in a
// cookie), then the patient's preferred language (preferred, "" when not known), then the
// browser's Accept-Language, then English.
func chooseLang(c echo.Context, preferred string) string {
	if l := pageLang(c.QueryParam("lang")); l != "" {
		return l
	}
	if ck, err := c.Cookie(langCookie); err == nil {
		if l := pageLang(ck.Value); l != "" {
			return l
		}
	}
	if l := pageLang(preferred); l != "" {
		return l
	}
	return requestLang(c)
}

// rememberLang keeps a ?lang= switch for the next pages. The cookie holds no personal data.
func (s *Server) rememberLang(c echo.Context) {
	l := pageLang(c.QueryParam("lang"))
	if l == "" {
		return
	}
	c.SetCookie(&http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

var zhWeekdays = [...]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

// formatDay writes a day the way the language does: "Tue 24 Nov" or "11月24日 周二".
func formatDay(t time.Time, lang string) string {
	if lang == protocols.ZH {
		return fmt.Sprintf("%d月%d日 %s", int(t.Month()), t.Day(), zhWeekdays[t.Weekday()])
	}
	return t.Format("Mon 2 Jan")
}

// formatDate writes a calendar date (already in the clinic's zone) like formatDay.
func formatDate(d protocols.Date, lang string) string {
	return formatDay(time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC), lang)
}

// clinicTime is an instant as the clinic's pages show it: in the clinic's zone (loc), to the
// minute. The server's own zone never shows: times come from PostgreSQL in it.
func clinicTime(t time.Time, loc *time.Location) string {
	return t.In(orUTC(loc)).Format("2006-01-02 15:04")
}

// clinicDate is an instant's date in the clinic's zone: a procedure done at 07:00 in Shanghai is
// on that day, not on the day before as in UTC.
func clinicDate(t time.Time, loc *time.Location) string { return t.In(orUTC(loc)).Format("2006-01-02") }

// orUTC is loc, or UTC where no zone is known.
func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

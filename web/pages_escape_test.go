package web

import (
	"reflect"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

// hostile fills every string a page's data holds, however deep (fields of fields, one
// element of every slice, what every pointer points at), with evilText, and returns v. A
// field added later is covered without editing the test. Integers, times and ids keep their
// zero values; an enum-like string (a state, a kind) holding evilText takes the page's
// fallback branch, which must escape as well as the others.
func hostile[T any](v T) T {
	fill(reflect.ValueOf(&v).Elem(), 0)
	return v
}

func fill(v reflect.Value, depth int) {
	if depth > 6 || !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(evilText)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), depth+1)
		}
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && v.Type().Elem().PkgPath() != "time" {
			p := reflect.New(v.Type().Elem())
			fill(p.Elem(), depth+1)
			v.Set(p)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // bytes, not text
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	}
}

// TestEveryPageEscapesHostileText renders every page with hostile text in every free-text
// field (names, notes, messages, reasons, protocol texts, errors, the flash and the title) and
// parses the result as a browser would: no element or attribute from the text appears, and
// the text comes back whole, as text. In both languages of the pages.
func TestEveryPageEscapesHostileText(t *testing.T) {
	t.Parallel()
	proto := &protocols.Protocol{ID: evilText, Version: 1, Title: protocols.Text{protocols.EN: evilText, protocols.ZH: evilText}}
	enrol := hostile(enrolData{})
	enrol.Protocols, enrol.Chosen = []*protocols.Protocol{proto}, proto
	pages := map[string]templ.Component{
		"worklist":     worklistPage(hostile(worklistData{})),
		"researcher":   researcherPage(),
		"patient new":  patientNewPage(hostile(patientFormData{})),
		"patient":      patientPage(hostile(patientData{})),
		"enrol":        enrolPage(enrol),
		"audit":        auditPage(hostile(auditData{})),
		"users":        usersPage(hostile(usersData{})),
		"link":         linkPage(hostile(linkData{})),
		"reminders":    remindersPage(hostile(outboxData{})),
		"compare":      comparePage(hostile(compareData{})),
		"exports":      exportIndexPage(hostile(exportPageData{})),
		"settings":     settingsPage(hostile(settingsData{})),
		"sign in":      signInPage(hostile(loginData{Passkeys: true})),
		"factor":       factorPage(hostile(factorData{Code: true, Passkey: true})),
		"verify":       verifyPage(hostile(factorData{Code: true, Passkey: true})),
		"enrol factor": setupPage(hostile(setupData{InSignIn: true, Passkeys: true})),
		"totp":         totpPage(hostile(setupData{QRPNG: []byte{1}})),
		"codes":        codesPage(hostile(setupData{})),
		"account":      accountPage(hostile(accountData{TOTP: true, PasskeysOn: true})),
		"tokens":       tokensPage(hostile(tokensData{})),
		"error":        errorPage(evilText),
		"parent home":  parentHomeView(hostile(parentPage{})),
		"parent error": invalidView(hostile(invalidPage{})),
	}
	for _, lang := range []string{protocols.EN, protocols.ZH} {
		info := pageInfo{Lang: lang, Title: evilText, CSRF: evilText, Flash: evilText,
			User: followup.Actor{Kind: followup.ActorUser, Role: followup.RoleAdmin}}
		for name, page := range pages {
			checkNoInjection(t, lang+" "+name, renderHTML(t, info, page))
		}
	}
}

// checkNoInjection fails if the page holds an element or attribute that evilText would add
// (a script with a body, an img, an event handler, its stray attribute), or if evilText does
// not come back whole as text.
func checkNoInjection(t *testing.T, name, page string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.ElementNode:
			if n.Data == "script" && (n.FirstChild != nil || attr(n, "src") == "") {
				t.Errorf("%s: an inline script", name)
			}
			if n.Data == "img" && attr(n, "src") == "x" {
				t.Errorf("%s: the text's <img> is an element", name)
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "a" || strings.ContainsAny(a.Key, `"'<>`) {
					t.Errorf("%s: attribute %s on <%s> came from the text", name, a.Key, n.Data)
				}
			}
		case html.TextNode:
			texts = append(texts, n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !strings.Contains(strings.Join(texts, "\n"), evilText) {
		t.Errorf("%s: the hostile text is not shown whole as text anywhere", name)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// The filler reaches what it is meant to reach.
func TestHostileFillsEveryString(t *testing.T) {
	t.Parallel()
	type inner struct{ Note string }
	type data struct {
		Name  string
		In    inner
		List  []inner
		Ptr   *inner
		Bytes []byte
		N     int
	}
	d := hostile(data{})
	if d.Name != evilText || d.In.Note != evilText || len(d.List) != 1 || d.List[0].Note != evilText ||
		d.Ptr == nil || d.Ptr.Note != evilText || d.Bytes != nil || d.N != 0 {
		t.Errorf("hostile filled %+v", d)
	}
}

package protocols

// Languages every protocol, scale and view is written in. Parents choose one; clinicians may read
// either.
const (
	EN = "en"
	ZH = "zh-CN"
)

// Langs lists the supported languages, English first (the fallback).
func Langs() []string { return []string{EN, ZH} }

// Text is one piece of text in every supported language, keyed by language tag.
type Text map[string]string

// In returns the text in lang, falling back to English so that a parent never sees a blank.
func (t Text) In(lang string) string {
	if s, ok := t[lang]; ok && s != "" {
		return s
	}
	return t[EN]
}

func knownLang(lang string) bool { return lang == EN || lang == ZH }

package web

import (
	"fmt"
	"testing"
)

// tr1 writes what trf writes, for every text of the catalogue in every language, and fill1
// what fmt writes whatever the text's verbs (none, one %s, several, a %% or another verb).
func TestTr1IsTrf(t *testing.T) {
	t.Parallel()
	const arg = `<b>7</b> & "x"`
	n := 0
	for lang, texts := range catalogue {
		for key := range texts {
			got, want := tr1(lang, key, arg), trf(lang, key, arg)
			if got != want {
				t.Errorf("%s %s: tr1 = %q, trf = %q", lang, key, got, want)
			}
			n++
		}
	}
	for _, s := range []string{"a %s b", "%s", "100%% %s", "%s and %s", "%d", "none", "%q"} {
		if got, want := fill1(s, arg), fmt.Sprintf(s, arg); got != want {
			t.Errorf("%q: fill1 = %q, fmt = %q", s, got, want)
		}
	}
	if n < 100 {
		t.Errorf("checked %d texts: is the catalogue loaded?", n)
	}
}

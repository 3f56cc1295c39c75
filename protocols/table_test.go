package protocols

import (
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	p := mustProtocol(t, mustRegistry(t, ""), "pws-hemoporfin-pdt")
	var en, zh strings.Builder
	if err := p.WriteTable(&en, EN); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteTable(&zh, ZH); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(en.String(), "\n")
	if lines[0] != "pws-hemoporfin-pdt v1  Port-wine stain: hemoporfin PDT aftercare" {
		t.Errorf("title line %q", lines[0])
	}
	for _, want := range []string{
		"KEY              OFFSET  WINDOW        WHO     REMIND  VIEWS",
		"baseline         -1h     -24h to +0h   clinic  no      front,left-oblique,right-oblique,close-up  Before treatment",
		"week-2           +14d    +12d to +16d  family  yes     front,left-oblique,right-oblique           Week 2",
		"light-sensitive", // aftercare follows the table
	} {
		if !strings.Contains(en.String(), want) {
			t.Errorf("English table lacks %q:\n%s", want, en.String())
		}
	}
	for _, want := range []string{"鲜红斑痣", "第 8 周（下次治疗前）", "严格避光"} {
		if !strings.Contains(zh.String(), want) {
			t.Errorf("Chinese table lacks %q", want)
		}
	}
	if err := p.WriteTable(&en, "fr"); err == nil {
		t.Errorf("unknown language accepted")
	}
}

func TestWriteList(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := mustRegistry(t, "testdata/clinic").WriteList(&b, EN); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ID                  VERSION  TIMEPOINTS  KINDS                  TITLE",
		"clinic-scar-check   1        2           test                   Test protocol",
		"pdl-vascular-laser  1        5           pulsed-dye-laser       Pulsed-dye laser for a vascular lesion: aftercare",
		"pws-hemoporfin-pdt  1        8           hemoporfin-pdt         Port-wine stain: hemoporfin PDT aftercare",
		"pws-hemoporfin-pdt  2        9           hemoporfin-pdt         Port-wine stain: hemoporfin PDT aftercare",
		"surgical-wound      1        5           excision,mohs-surgery  Surgical wound: aftercare after excision or Mohs surgery",
	}
	if got := strings.TrimRight(b.String(), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("list:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestViews(t *testing.T) {
	t.Parallel()
	vs := Views()
	if len(vs) != 7 || vs[0].Name != "front" {
		t.Fatalf("Views() = %v", vs)
	}
	for _, v := range vs {
		for _, lang := range Langs() {
			if v.Label[lang] == "" || v.Hint[lang] == "" {
				t.Errorf("view %s lacks %s text", v.Name, lang)
			}
		}
	}
	vs[0].Name = "changed" // a caller's copy: the known set stays as it is
	if _, ok := LookupView("front"); !ok {
		t.Errorf("front is no longer known")
	}
	if _, ok := LookupView("frontal"); ok {
		t.Errorf("frontal is known")
	}
	if got := (Text{EN: "Hello"}).In(ZH); got != "Hello" {
		t.Errorf("fallback to English: %q", got)
	}
}

package protocols

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The tables keep technical column headings in English in both languages and put translated
// text in the last column: tabwriter counts runes, and a Chinese character is two columns wide,
// so anything after a Chinese cell would drift out of line.

// WriteTable writes the protocol's timeline as a table (offsets, windows, who, views, reminder,
// label in lang), followed by the aftercare of each step.
func (p *Protocol) WriteTable(w io.Writer, lang string) error {
	if !knownLang(lang) {
		return fmt.Errorf("protocols: unknown language %q (use %s or %s)", lang, EN, ZH)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s v%d  %s\n", p.ID, p.Version, p.Title.In(lang))
	fmt.Fprintf(bw, "kinds: %s   scale: %s   grace: %dd\n\n", strings.Join(p.Kinds, ", "), p.Scale, p.Grace)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tOFFSET\tWINDOW\tWHO\tREMIND\tVIEWS\tLABEL")
	for _, tp := range p.Timepoints {
		remind := "no"
		if tp.Remind {
			remind = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tp.Key, tp.Offset, tp.windowText(), tp.Who, remind,
			strings.Join(tp.Views, ","), tp.Label.In(lang))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(bw, "\n%s\n", indent(p.Instructions.In(lang)))
	for _, tp := range p.Timepoints {
		fmt.Fprintf(bw, "\n%s  %s\n%s\n", tp.Key, tp.Label.In(lang), indent(tp.Aftercare.In(lang)))
	}
	return bw.Flush()
}

// WriteList writes one line per protocol version: id, version, timepoint count, kinds and title.
func (r *Registry) WriteList(w io.Writer, lang string) error {
	if !knownLang(lang) {
		return fmt.Errorf("protocols: unknown language %q (use %s or %s)", lang, EN, ZH)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tTIMEPOINTS\tKINDS\tTITLE")
	for _, p := range r.Protocols() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", p.ID, p.Version, len(p.Timepoints), strings.Join(p.Kinds, ","), p.Title.In(lang))
	}
	return tw.Flush()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

package web

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

// The grid is most of the timeline page's markup: a column per timepoint, a row per view, a
// cell for each pair (24 in the PWS protocol). In templ every expression costs a conversion
// and an allocation or two, and every component call a closure and a context, so what a
// column or a cell shows is decided and its texts made here, once, and the template
// (timelineGrid) only writes them.

type timelineColumn struct {
	Key, Label, State string
	Day               int
	When              string // "day 7 · 2026-05-11"
	StateText         string // the state in the page's language
}

// cellShows is what a cell of the grid shows.
type cellShows int

const (
	cellNone       cellShows = iota // a view the protocol does not ask for at this timepoint
	cellThumb                       // the newest photo's thumbnail, which opens the comparison
	cellUnreadable                  // a photo whose thumbnails cannot be made: a link to its original
	cellPending                     // a photo whose thumbnails are not made yet
	cellDue                         // asked for, the window not open yet
	cellMissing                     // asked for, no photo
)

// timelineCell is one cell of the grid.
type timelineCell struct {
	Required bool            // the protocol asks for this view at this timepoint
	Upcoming bool            // the timepoint's window has not opened yet
	Photo    *followup.Photo // the newest active photo, if any
	Count    int             // active photos in the cell

	// What it shows (describe): the link of a photo, its thumbnail and alternative text,
	// the state's words, the photo's quality flags in words and "3 photos" for more than one.
	Show                cellShows
	Href, Thumb, Alt    string
	Text, Quality, More string
}

type timelineRow struct {
	View, Label string
	Cells       []timelineCell
}

// newTimelineGrid is the grid of the procedure's active photos (concern photos have their own
// row, concernCell); views are those the protocol asks for and any a photo has, in the
// protocols' order of views.
func newTimelineGrid(pp *procedurePage, photos []*followup.Photo, proc string) ([]timelineColumn, []timelineRow) {
	cols := make([]timelineColumn, len(pp.View.Timepoints))
	var views []string
	for i, t := range pp.View.Timepoints {
		day := int(t.DueAt.Sub(pp.View.PerformedAt).Round(24*time.Hour) / (24 * time.Hour))
		due := t.DueOn.String()
		cols[i] = timelineColumn{Key: t.Key, Label: pp.label(t.Key), State: string(t.State), Day: day,
			When:      tr1(pp.Lang, "cl_day_n", strconv.Itoa(day)) + " · " + due,
			StateText: trOr(pp.Lang, "cl_tp_state_"+string(t.State), string(t.State))}
		for _, v := range t.Views {
			if !slices.Contains(views, v) {
				views = append(views, v)
			}
		}
	}
	for _, p := range photos {
		if p.Kind != followup.PhotoConcern && !slices.Contains(views, p.View) {
			views = append(views, p.View)
		}
	}
	slices.SortStableFunc(views, func(a, b string) int { return cmp.Compare(protocols.ViewOrder(a), protocols.ViewOrder(b)) })
	rows := make([]timelineRow, len(views))
	for r, v := range views {
		row := timelineRow{View: v, Label: pp.viewLabel(v), Cells: make([]timelineCell, len(cols))}
		for i, t := range pp.View.Timepoints {
			row.Cells[i].Required = slices.Contains(t.Views, v)
			row.Cells[i].Upcoming = t.State == protocols.StateUpcoming
		}
		for _, p := range photos {
			if col, ok := pp.position[p.Timepoint]; ok && p.View == v {
				row.Cells[col].Photo = p // timeline order: the newest wins
				row.Cells[col].Count++
			}
		}
		for i := range row.Cells {
			row.Cells[i].describe(proc, pp.Lang)
		}
		rows[r] = row
	}
	return cols, rows
}

// describe decides what the cell shows and makes its texts; proc is the procedure's path.
func (c *timelineCell) describe(proc, lang string) {
	switch p := c.Photo; {
	case p != nil && p.ThumbsReady:
		id := p.ID.String()
		c.Show, c.Href, c.Thumb, c.Alt = cellThumb, proc+"/compare?b="+id, "/api/v1/photos/"+id+"/thumbnail", p.Timepoint+" "+p.View
	case p != nil && p.ThumbnailState == followup.ThumbnailUnreadable:
		c.Show, c.Href, c.Text = cellUnreadable, "/api/v1/photos/"+p.ID.String()+"/original", tr(lang, "cl_cell_unreadable")
	case p != nil:
		c.Show, c.Href, c.Text = cellPending, proc+"/compare?b="+p.ID.String(), tr(lang, "cl_cell_processing")
	case c.Required && c.Upcoming:
		c.Show, c.Text = cellDue, tr(lang, "cl_cell_due")
	case c.Required:
		c.Show, c.Text = cellMissing, tr(lang, "cl_cell_missing")
	default:
		c.Show = cellNone
	}
	if p := c.Photo; p != nil && p.Quality != nil && len(p.Quality.Flags) > 0 {
		c.Quality = qualityWords(lang, p.Quality.Flags)
	}
	if c.Count > 1 {
		c.More = trn(lang, "cl_photos_n", c.Count)
	}
}

// qualityWords names a photo's quality flags (the thresholds: imagestore/quality.go) in lang.
func qualityWords(lang string, flags []string) string {
	if len(flags) == 1 {
		return trOr(lang, "cl_quality_"+flags[0], flags[0])
	}
	words := make([]string, len(flags))
	for i, f := range flags {
		words[i] = trOr(lang, "cl_quality_"+f, f)
	}
	return strings.Join(words, ", ")
}

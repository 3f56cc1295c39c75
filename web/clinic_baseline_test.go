package web

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// baseline finds, without sorting, the photo the timeline's order puts first among the
// scheduled ones: the earliest step's first received, never a concern or withdrawn photo.
func TestBaselineIsFirstScheduledActivePhoto(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	pp := procedurePage{position: map[string]int{"d0": 0, "d7": 1, "d14": 2}}
	if pp.baseline() != nil {
		t.Fatal("a procedure without photos has a baseline")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var photos []followup.Photo
		for range 1 + r.IntN(8) {
			p := followup.Photo{ID: uuid.New(), Timepoint: []string{"d0", "d7", "d14", "gone"}[r.IntN(4)], Status: "active",
				Kind: followup.PhotoScheduled, ReceivedAt: at.Add(time.Duration(r.IntN(4)) * time.Hour)}
			switch r.IntN(5) {
			case 0:
				p.Kind, p.Timepoint = followup.PhotoConcern, ""
			case 1:
				p.Status = "withdrawn"
			}
			photos = append(photos, p)
		}
		pp.View.Photos = photos
		var want *followup.Photo
		for _, p := range pp.activePhotos() {
			if p.Kind != followup.PhotoConcern {
				want = p
				break
			}
		}
		got := pp.baseline()
		if (got == nil) != (want == nil) || got != nil && got.ID != want.ID {
			t.Fatalf("round %d: baseline = %v, want %v (photos %+v)", round, got, want, photos)
		}
	}
}

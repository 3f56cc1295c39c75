package web

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTimelineNamesUnreadablePhoto: a photo whose thumbnails could not be made after every
// attempt is not left "processing…" for ever: the timeline says in words
// that it cannot be shown and links its original, which still downloads, and the API calls
// it unreadable.
func TestTimelineNamesUnreadablePhoto(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	// What the thumbnailer leaves after its last attempt (followup's
	// TestThumbnailFailuresDoNotStallTheQueue makes it so from real files).
	if _, err := f.srv.cfg.Pool.Exec(clinicCtx(t), `update photos set thumbnails_at = null, unreadable_at = now(),
		thumbnail_attempts = 5, thumbnail_error = 'jpeg: the scan ends before the frame is filled' where id = $1`, f.photoID); err != nil {
		t.Fatal(err)
	}
	b := f.client(t)
	b.mustLogin(f.clinician)
	p := b.get("/procedures/" + f.procedureID)
	original := "/api/v1/photos/" + f.photoID + "/original"
	if p.status != 200 || !strings.Contains(p.body, `class="tl-unreadable"`) || !strings.Contains(p.body, "cannot be shown") ||
		!strings.Contains(p.body, original) {
		t.Errorf("timeline of an unreadable photo = %d; want it named in words with a link to its original", p.status)
	}
	if strings.Contains(p.body, "/api/v1/photos/"+f.photoID+"/thumbnail") {
		t.Error("the timeline asks for the thumbnail of a photo that has none")
	}
	if code := b.get(original).status; code != 200 {
		t.Errorf("the unreadable photo's original = %d, want 200", code)
	}
	api := b.get("/api/v1/procedures/" + f.procedureID)
	var out struct {
		Photos []struct {
			ID             string `json:"id"`
			ThumbnailState string `json:"thumbnail_state"`
		} `json:"photos"`
	}
	if err := json.Unmarshal([]byte(api.body), &out); err != nil || api.status != 200 {
		t.Fatalf("GET procedure = %d, %v", api.status, err)
	}
	found := false
	for _, ph := range out.Photos {
		if ph.ID == f.photoID {
			found = true
			if ph.ThumbnailState != "unreadable" {
				t.Errorf("thumbnail_state = %q, want unreadable", ph.ThumbnailState)
			}
		}
	}
	if !found {
		t.Errorf("the API lists no photo %s", f.photoID)
	}
}

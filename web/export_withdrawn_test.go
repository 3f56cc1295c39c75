package web

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// TestExportLeavesWithdrawnPhotoOut: a photo a clinician withdrew (sent by
// mistake, or through a forwarded link) stays stored but leaves the research exports.
func TestExportLeavesWithdrawnPhotoOut(t *testing.T) {
	t.Parallel()
	store, err := imagestore.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := newExportFixture(t, store)
	ctx := context.Background()
	var procedure uuid.UUID
	if err := f.pool.QueryRow(ctx, `select procedure_id from photos where id = $1`, f.photoID).Scan(&procedure); err != nil {
		t.Fatal(err)
	}
	body := imagetest.PhoneJPEG(320, 240, 7, 1)
	extra, _, err := f.svc.AddPhoto(ctx, f.clinicianActor, procedure, followup.PhotoUpload{Timepoint: "baseline", View: "front",
		UploadID: "export-withdrawn-1"}, bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.WithdrawPhoto(ctx, f.clinicianActor, procedure, extra.ID, "the family sent another child's photo"); err != nil {
		t.Fatal(err)
	}
	e := f.start(t, f.admin)
	if e.Photos != 1 || e.Progress.Total != 1 {
		t.Errorf("export with one active and one withdrawn photo = %d photos (%d in all), want 1: the withdrawn one left out", e.Photos, e.Progress.Total)
	}
	if n := f.count(t, `select count(*) from photos where id = $1 and status <> 'active'`, extra.ID); n != 1 {
		t.Errorf("the withdrawn photo's row: %d, want it kept, marked", n)
	}
}

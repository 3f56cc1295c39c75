package followup

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// TestUploadRecordsStrayBytes: a phone's JPEG with bytes between two segments is
// stored as the same photo without them, and the upload's record (the photo's row and its
// audit event) says how many stray bytes were dropped, beside the metadata removed.
func TestUploadRecordsStrayBytes(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	photo := imagetest.PhoneJPEG(64, 48, 2, 6)
	first := 4 + int(photo[4])<<8 + int(photo[5]) // SOI, then the first segment's marker and length
	stray := []byte("\x00\x00STRAY-BYTES!")
	p, _, err := f.upload(t, f.clinician, "baseline", "front", "stray-bytes-1", slices.Concat(photo[:first], stray, photo[first:]))
	if err != nil {
		t.Fatalf("upload of a JPEG with stray bytes: %v", err)
	}
	want, _, err := imagestore.SanitizeBytes(photo, imagestore.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := f.svc.OpenPhoto(ctx, f.clinician, p.ID, VariantOriginal)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(stored, want) {
		t.Errorf("stored %d bytes (%v), want the same photo's without stray bytes (%d)", len(stored), err, len(want))
	}
	var row, audit []byte
	if err := f.svc.pool.QueryRow(ctx, `select removed from photos where id = $1`, p.ID).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.pool.QueryRow(ctx, `select detail->'removed' from audit_events where action = 'photo_uploaded' and target_id = $1`,
		p.ID).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{"the photo's row": row, "the audit event": audit} {
		var rs []removal
		if err := json.Unmarshal(raw, &rs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := map[string]int64{}
		for _, r := range rs {
			got[r.Kind] = r.Bytes
		}
		if got[string(imagestore.RemovedStrayBytes)] != int64(len(stray)) || got[string(imagestore.RemovedEXIF)] <= 0 {
			t.Errorf("%s records %s, want %d stray bytes beside the EXIF removed", name, raw, len(stray))
		}
	}
}

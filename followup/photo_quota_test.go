package followup

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestPhotoQuotas: a link takes at most so many photos a minute and in all, and a step at
// most so many from anyone; the one over is refused with ETOOMANY and a message to contact the
// clinic, and stores nothing; a retry of a photo already stored is still answered.
func TestPhotoQuotas(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t, func(c *Config) { c.Quota = PhotoQuota{LinkPhotos: 4, LinkPerMinute: 2, StepPhotos: 5} })
	parent := f.parent(t)
	up := func(a Actor, id string) error {
		_, _, err := f.upload(t, a, "day-1", "front", id, testJPEG(t, byte(len(id))))
		return err
	}
	for i := range 2 {
		if err := up(parent, fmt.Sprintf("quota-minute-%d", i)); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	err := up(parent, "quota-minute-2")
	if ErrorCode(err) != ETOOMANY || ErrorMessage(err) == "" {
		t.Errorf("third upload in a minute = %v, want ETOOMANY", err)
	}
	if err := up(parent, "quota-minute-0"); err != nil {
		t.Errorf("a retry of a stored photo over the quota = %v, want the stored photo", err)
	}
	f.clock.Set(f.clock.Now().Add(2 * time.Minute))
	for i := 3; i < 5; i++ {
		if err := up(parent, fmt.Sprintf("quota-total-%d", i)); err != nil {
			t.Fatalf("upload %d after a minute: %v", i, err)
		}
		f.clock.Set(f.clock.Now().Add(time.Minute))
	}
	if err := up(parent, "quota-total-5"); ErrorCode(err) != ETOOMANY {
		t.Errorf("fifth photo through a link of four = %v, want ETOOMANY", err)
	}
	// The step's quota counts the clinic's photos too.
	if err := up(f.clinician, "quota-step-1"); err != nil {
		t.Fatalf("clinic upload: %v", err)
	}
	if err := up(f.clinician, "quota-step-2"); ErrorCode(err) != ETOOMANY {
		t.Errorf("sixth photo of a step of five = %v, want ETOOMANY", err)
	}
	if n := countRows(t, f.svc, `select count(*) from photos`); n != 5 {
		t.Errorf("%d photos stored, want 5", n)
	}
}

// TestPhotoQuotaLinkBytes: a link's bytes are a quota of their own, beside its count: once
// what it sent reaches the bound, the next photo is refused (ETOOMANY, "contact the clinic")
// and stores nothing, while a retry of a stored photo is still answered and the clinic's own
// uploads are not the link's.
func TestPhotoQuotaLinkBytes(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t, func(c *Config) { c.Quota = PhotoQuota{LinkBytes: 1} })
	parent := f.parent(t)
	first, _, err := f.upload(t, parent, "day-1", "front", "bytes-quota-1", testJPEG(t, 1))
	if err != nil {
		t.Fatalf("first photo through the link: %v", err)
	}
	_, _, err = f.upload(t, parent, "day-1", "front", "bytes-quota-2", testJPEG(t, 2))
	if ErrorCode(err) != ETOOMANY || !strings.Contains(ErrorMessage(err), "contact the clinic") {
		t.Errorf("a photo past the link's bytes = %v, want ETOOMANY telling to contact the clinic", err)
	}
	if again, _, err := f.upload(t, parent, "day-1", "front", "bytes-quota-1", testJPEG(t, 1)); err != nil || again.ID != first.ID {
		t.Errorf("retry of the stored photo over the bytes quota = %v, %v; want the stored photo", again.ID, err)
	}
	if _, _, err := f.upload(t, f.clinician, "day-1", "front", "bytes-quota-clinic", testJPEG(t, 3)); err != nil {
		t.Errorf("the clinic's upload counted against the link's bytes: %v", err)
	}
	if n := countRows(t, f.svc, `select count(*) from photos`); n != 2 {
		t.Errorf("%d photos stored, want 2 (the link's first and the clinic's)", n)
	}
}

// TestPhotoQuotaStepBytes: one step's bytes are bounded too, whoever sends them: once the
// step holds the bound, the next photo of that step is refused and stores nothing, while
// another step still takes photos.
func TestPhotoQuotaStepBytes(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t, func(c *Config) { c.Quota = PhotoQuota{StepBytes: 1} })
	if _, _, err := f.upload(t, f.clinician, "day-1", "front", "step-bytes-1", testJPEG(t, 1)); err != nil {
		t.Fatalf("first photo of the step: %v", err)
	}
	_, _, err := f.upload(t, f.parent(t), "day-1", "left", "step-bytes-2", testJPEG(t, 2))
	if ErrorCode(err) != ETOOMANY || !strings.Contains(ErrorMessage(err), "contact the clinic") {
		t.Errorf("a photo past the step's bytes = %v, want ETOOMANY telling to contact the clinic", err)
	}
	if _, _, err := f.upload(t, f.clinician, "baseline", "front", "step-bytes-3", testJPEG(t, 3)); err != nil {
		t.Errorf("another step's photo: %v", err)
	}
	if n := countRows(t, f.svc, `select count(*) from photos`); n != 2 {
		t.Errorf("%d photos stored, want 2", n)
	}
}

// TestWithdrawPhoto: a clinician withdraws a photo with a reason: it stays stored, marked,
// audited, and leaves the timeline's active set; researchers cannot, another clinic finds
// nothing, a reason is required, and a photo of another procedure is not found through this
// one.
func TestWithdrawPhoto(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	p, _, err := f.upload(t, f.clinician, "baseline", "front", "withdraw-me-1", testJPEG(t, 4))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	_, researcher := mustUser(t, f.svc, f.clinic.ID, RoleResearcher)
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:6], "UTC")
	_, outsider := mustUser(t, f.svc, other.ID, RoleClinician)
	cases := []struct {
		name      string
		a         Actor
		procedure uuid.UUID
		reason    string
		want      string
	}{
		{"researcher", researcher, uuid.Nil, "sent by mistake", EFORBIDDEN},
		{"other clinic", outsider, uuid.Nil, "sent by mistake", ENOTFOUND},
		{"no reason", f.clinician, uuid.Nil, "", EINVALID},
		{"through another procedure", f.clinician, uuid.New(), "sent by mistake", ENOTFOUND},
	}
	for _, c := range cases {
		if _, err := f.svc.WithdrawPhoto(ctx, c.a, c.procedure, p.ID, c.reason); ErrorCode(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	got, err := f.svc.WithdrawPhoto(ctx, f.clinician, f.proc.ID, p.ID, "a forwarded link sent it")
	if err != nil || got.Status != "withdrawn" {
		t.Fatalf("withdraw = %+v, %v", got, err)
	}
	if _, err := f.svc.WithdrawPhoto(ctx, f.clinician, uuid.Nil, p.ID, "again"); err != nil {
		t.Errorf("withdrawing again: %v", err)
	}
	if n := countRows(t, f.svc, `select count(*) from audit_events where action = 'photo_withdrawn' and target_id = $1`, p.ID); n != 1 {
		t.Errorf("%d withdrawal audit events, want 1", n)
	}
	if _, _, err := f.svc.OpenPhoto(ctx, f.clinician, p.ID, VariantOriginal); err != nil {
		t.Errorf("a withdrawn photo's original is gone: %v", err)
	}
}

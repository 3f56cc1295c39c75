package followup

import (
	"context"
	"time"

	"github.com/dermfollow/dermfollow/protocols"
)

// ScaleExportItems is the export's photo selection of clinic's PWS photos (performed on or
// after from, when set) for BenchmarkScaleQueries, which runs outside the package.
func ScaleExportItems(svc *Service, clinic Clinic, from time.Time) func(context.Context) error {
	job := exportJob{clinic: clinic.ID, protocol: "pws-hemoporfin-pdt", views: svc.protocolViews("pws-hemoporfin-pdt")}
	if !from.IsZero() {
		job.from = protocols.DateOf(from, clinic.Location)
	}
	key := make([]byte, 32)
	return func(ctx context.Context) error { _, err := svc.exportItems(ctx, job, clinic.Location, key); return err }
}

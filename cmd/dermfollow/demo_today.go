package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/followup/thumbnails"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// The demo's second family: a procedure four days ago, so that its day-4 step is due today and
// the printed parent link has something to do, with a short conversation (the family's
// message with a concern photo, the clinic's reply) to read and answer.
const (
	demoTodayPatient = "Ann Demo"
	demoTodayDays    = 4 // the day-4 step: due today, its window open from yesterday to tomorrow
	demoFamilyText   = "A small blister came up on the treated cheek this morning. Is that normal? I attached a photo."
	demoClinicReply  = "Thank you for the photo. A small blister can happen after this treatment: keep it clean and dry and do not burst it. " +
		"If it grows, looks yellow, or your child has a fever, call us."
)

// demoContact is the demo clinic's contact, shown on the family's page.
var demoContact = followup.ContactSettings{MessageInbox: "inbox@demo.dermfollow.example", Phone: "+86 21 5555 0100",
	Hours: "Mon-Fri 8:00-17:00"}

// demoDueToday returns the demo's procedure with a family step open now, seeding one (with
// its photos so far and its conversation) when none is: the first run, or a run days later.
func demoDueToday(ctx context.Context, svcs *services, clinician followup.Actor, stderr io.Writer) (uuid.UUID, error) {
	svc := svcs.core
	list, err := svc.ListProcedures(ctx, clinician, followup.ProcedureFilter{Status: followup.StatusActive, Search: demoTodayPatient, Limit: 20})
	if err != nil {
		return uuid.Nil, err
	}
	patientID := uuid.Nil
	for _, p := range list {
		patientID = p.PatientID
		v, err := svc.ProcedureView(ctx, clinician, p.ID)
		if err != nil {
			return uuid.Nil, err
		}
		for _, tp := range v.Timepoints {
			if tp.Who == "family" && tp.State == protocols.StateOpen {
				return p.ID, nil
			}
		}
	}
	if patientID == uuid.Nil {
		patient, err := svc.CreatePatient(ctx, clinician, followup.NewPatient{DisplayName: demoTodayPatient,
			BirthDate: time.Now().AddDate(-2, -5, 0).Format(time.DateOnly), MRN: "DEMO-0002",
			GuardianEmail: "ann.parent@demo.dermfollow.example", PreferredLanguage: "en", ResearchConsent: true})
		if err != nil {
			return uuid.Nil, err
		}
		patientID = patient.ID
	}
	clinic, err := svc.Clinic(ctx, clinician.ClinicID)
	if err != nil {
		return uuid.Nil, err
	}
	today := time.Now().In(clinic.Location)
	performed := time.Date(today.Year(), today.Month(), today.Day()-demoTodayDays, 10, 0, 0, 0, clinic.Location)
	fmt.Fprintln(stderr, "demo: drawing the photos of a follow-up with a step due today...")
	proc, parent, err := seedDemoProcedure(ctx, svc, clinician, patientID, performed, performed.AddDate(0, 0, demoTodayDays-1))
	if err != nil {
		return uuid.Nil, err
	}
	if err := seedDemoConversation(ctx, svcs, clinician, parent, proc.ID); err != nil {
		return uuid.Nil, err
	}
	return proc.ID, nil
}

// seedDemoConversation posts the family's message with a concern photo, through the same
// upload path and conversation as the family's page, and the clinic's reply. The notices go
// as they would: the clinic's inbox hears of the message, the family of the answer.
func seedDemoConversation(ctx context.Context, svcs *services, clinician, parent followup.Actor, procID uuid.UUID) error {
	conv, err := conversation.New(conversation.Config{Pool: svcs.pool, Notices: svcs.reminders})
	if err != nil {
		return err
	}
	body := demoPhoto(0.3, 97, "close-up")
	photo, _, err := svcs.core.AddPhoto(ctx, parent, procID, followup.PhotoUpload{Kind: followup.PhotoConcern, UploadID: "demo-concern-1"},
		bytes.NewReader(body), int64(len(body)), imagestore.Limits{})
	if err != nil {
		return fmt.Errorf("demo concern photo: %w", err)
	}
	if _, _, err := conv.Post(ctx, parent, conversation.Post{Body: demoFamilyText, ClientID: "demo-message-1",
		PhotoIDs: []uuid.UUID{photo.ID}}); err != nil {
		return fmt.Errorf("demo family message: %w", err)
	}
	if _, err := conv.Reply(ctx, clinician, procID, demoClinicReply); err != nil {
		return fmt.Errorf("demo clinic reply: %w", err)
	}
	return makeDemoThumbnails(ctx, svcs.thumbnails)
}

// makeDemoThumbnails makes every pending thumbnail now, so that the pages show them at once.
func makeDemoThumbnails(ctx context.Context, th *thumbnails.Thumbnailer) error {
	for {
		n, err := th.Make(ctx, 16)
		if err != nil || n == 0 {
			return err
		}
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/imagestore"
)

const (
	demoClinic = "Demo Dermatology Clinic"
	demoEmail  = "clinician@demo.dermfollow.example"
)

// runDemo seeds a demo clinic: a clinician, a patient enrolled in the PWS protocol two weeks
// ago with synthetic photos of a lesion that fades over the timepoints (drawn here: never a
// real patient's photo), and a second one four days ago whose day-4 step is due today, with a
// short conversation; the parent link printed is the second one's. Run again, it keeps the
// data, sets a new password, seeds a new due-today follow-up when none is open any more and
// rotates the link, so the printed login and link always work. The demo clinic does not
// require a second factor of its clinicians, so that the login reaches the worklist at once.
func runDemo(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: dermfollow demo\n\nSeeds demo data (a clinic, a clinician, patients with photos and a conversation) and prints a login and a parent link.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svcs, err := openService(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svcs.pool.Close()
	clinician, fresh, password, err := demoClinician(ctx, svcs)
	if err != nil {
		return err
	}
	if fresh {
		if _, err := seedDemoPatient(ctx, svcs, clinician, stderr); err != nil {
			return err
		}
	}
	procID, err := demoDueToday(ctx, svcs, clinician, stderr)
	if err != nil {
		return err
	}
	link, err := svcs.core.CreateLink(ctx, clinician, procID, true)
	if err != nil {
		return err
	}
	// The "Parent link:" line holds the URL alone: scripts read it (scripts/bench.sh).
	fmt.Fprintf(stdout, "\nDemo data is ready.\n  Clinician login: %s\n  Password:        %s\n  Parent link:     %s\n", demoEmail, password, link.URL)
	fmt.Fprintf(stdout, "                   (%s: the day-4 photos are due today; the family's messages hold a question and the clinic's answer)\n", demoTodayPatient)
	fmt.Fprintf(stdout, "  Second factor:   not required of the demo clinic's clinicians, so the login opens the worklist\n"+
		"                   (turn it on: dermfollow clinic set -clinic %q -require-second-factor=true)\n", demoClinic)
	if clinician.Role != followup.RoleClinician {
		fmt.Fprintf(stdout, "  Note:            this login is an %s of older demo data: it needs a second factor to sign in\n"+
			"                   (remove the demo data and run again for a clinician's login)\n", clinician.Role)
	}
	fmt.Fprintln(stdout)
	return nil
}

// demoClinician finds or makes the demo clinic and its clinician, with a new password, and
// sets what the demo needs of the clinic: no second factor for its clinicians (issue
// "clinician sign-in": every new clinic requires one) and the contact the family's page shows.
func demoClinician(ctx context.Context, svcs *services) (clinician followup.Actor, fresh bool, password string, err error) {
	svc, acc := svcs.core, svcs.accounts
	password = randomPassword()
	clinic, err := svc.ClinicByName(ctx, demoClinic)
	fresh = followup.ErrorCode(err) == followup.ENOTFOUND
	switch {
	case fresh:
		if clinic, err = svc.CreateClinic(ctx, demoClinic, "Asia/Shanghai"); err != nil {
			return followup.Actor{}, false, "", err
		}
		if _, err := acc.CreateUser(ctx, followup.SystemActor(clinic.ID), accounts.NewUser{ClinicID: clinic.ID,
			Email: demoEmail, Name: "Dr. Demo", Role: followup.RoleClinician, Password: password}); err != nil {
			return followup.Actor{}, false, "", err
		}
	case err != nil:
		return followup.Actor{}, false, "", err
	default:
		if err := acc.SetPassword(ctx, followup.SystemActor(clinic.ID), demoEmail, password); err != nil {
			return followup.Actor{}, false, "", err
		}
	}
	sys := followup.SystemActor(clinic.ID)
	if err := acc.SetClinicSecondFactor(ctx, sys, false); err != nil {
		return followup.Actor{}, false, "", err
	}
	if _, err := svc.SetContactSettings(ctx, sys, demoContact); err != nil {
		return followup.Actor{}, false, "", err
	}
	user, err := acc.UserByEmail(ctx, sys, demoEmail)
	if err != nil {
		return followup.Actor{}, false, "", err
	}
	return followup.Actor{Kind: followup.ActorUser, ID: user.ID, ClinicID: clinic.ID, Role: user.Role}, fresh, password, nil
}

// seedDemoPatient enrols the first demo patient two weeks ago, with every step's photos.
func seedDemoPatient(ctx context.Context, svcs *services, clinician followup.Actor, stderr io.Writer) (followup.Enrolment, error) {
	svc := svcs.core
	patient, err := svc.CreatePatient(ctx, clinician, followup.NewPatient{DisplayName: "Mei Demo", BirthDate: time.Now().AddDate(-1, -2, 0).Format(time.DateOnly),
		MRN: "DEMO-0001", GuardianEmail: "parent@demo.dermfollow.example", PreferredLanguage: "zh-CN", ResearchConsent: true})
	if err != nil {
		return followup.Enrolment{}, err
	}
	fmt.Fprintln(stderr, "demo: drawing synthetic photos...")
	now := time.Now()
	proc, _, err := seedDemoProcedure(ctx, svc, clinician, patient.ID, now.AddDate(0, 0, -15).Truncate(time.Hour), now)
	if err != nil {
		return followup.Enrolment{}, err
	}
	return proc, makeDemoThumbnails(ctx, svcs.thumbnails)
}

// seedDemoProcedure enrols the patient in the PWS protocol at performed and sends the photos
// of every step due by until, as the clinic and the family would; it returns the procedure
// and its family's actor.
func seedDemoProcedure(ctx context.Context, svc *followup.Service, clinician followup.Actor, patientID uuid.UUID,
	performed, until time.Time) (followup.Enrolment, followup.Actor, error) {
	proc, err := svc.Enrol(ctx, clinician, followup.NewProcedure{PatientID: patientID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: performed.Format(time.RFC3339)})
	if err != nil {
		return followup.Enrolment{}, followup.Actor{}, err
	}
	link, err := svc.CreateLink(ctx, clinician, proc.ID, false)
	if err != nil {
		return followup.Enrolment{}, followup.Actor{}, err
	}
	parent, err := svc.ResolveLink(ctx, link.URL[len(link.URL)-43:])
	if err != nil {
		return followup.Enrolment{}, followup.Actor{}, err
	}
	for i, tp := range proc.Timepoints {
		if tp.DueAt.After(until) {
			break
		}
		who := parent
		if tp.Who == "clinic" {
			who = clinician
		}
		// The lesion fades over two weeks, as a good response to PDT would look.
		fade := math.Min(1, float64(tp.DueAt.Sub(performed))/float64(21*24*time.Hour))
		for j, view := range tp.Views {
			body := demoPhoto(fade, i*10+j, view)
			up := followup.PhotoUpload{Timepoint: tp.Key, View: view, UploadID: fmt.Sprintf("demo-%s-%s", tp.Key, view)}
			if _, _, err := svc.AddPhoto(ctx, who, proc.ID, up, bytes.NewReader(body), int64(len(body)), imagestore.Limits{}); err != nil {
				return followup.Enrolment{}, followup.Actor{}, fmt.Errorf("demo photo %s/%s: %w", tp.Key, view, err)
			}
		}
	}
	return proc, parent, nil
}

// demoPhoto draws a skin-toned field with an irregular port-wine-coloured lesion; fade from 0
// (untreated) to 1 (mostly cleared). Views shift the lesion as a turned head would.
func demoPhoto(fade float64, seed int, view string) []byte {
	const w, h = 1200, 900
	rng := mrand.New(mrand.NewPCG(uint64(seed), 7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy := 600.0, 450.0
	switch view {
	case "left-oblique":
		cx -= 180
	case "right-oblique":
		cx += 180
	case "close-up":
		cx, cy = 600, 450
	}
	scale := 1.0
	if view == "close-up" {
		scale = 1.8
	}
	skin := [3]float64{226, 178, 152}
	lesion := [3]float64{150, 38, 72}
	for y := range h {
		for x := range w {
			dx, dy := (float64(x)-cx)/(260*scale), (float64(y)-cy)/(170*scale)
			// An irregular edge: a blob whose radius wobbles with the angle.
			ang := math.Atan2(dy, dx)
			r := math.Hypot(dx, dy) / (1 + 0.18*math.Sin(3*ang) + 0.1*math.Cos(5*ang+1))
			in := math.Max(0, math.Min(1, (1.05-r)*6)) * (1 - 0.85*fade)
			shade := 1 - 0.12*float64(y)/h + (rng.Float64()-0.5)*0.04
			var c [3]float64
			for k := range c {
				c[k] = (skin[k]*(1-in) + lesion[k]*in) * shade
			}
			img.Set(x, y, color.RGBA{clamp(c[0]), clamp(c[1]), clamp(c[2]), 255})
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 88})
	return buf.Bytes()
}

func clamp(v float64) uint8 { return uint8(math.Max(0, math.Min(255, v))) }

func randomPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

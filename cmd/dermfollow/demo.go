package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
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
// ago with a parent link, and synthetic photos of a lesion that fades over the timepoints
// (drawn here: never a real patient's photo). Run again, it keeps the data, sets a new
// password and rotates the link, so the printed login and link always work.
func runDemo(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: dermfollow demo\n\nSeeds demo data (a clinic, a clinician, a patient with photos) and prints a login and a parent link.")
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
	svc, acc := svcs.core, svcs.accounts
	password := randomPassword()
	clinic, err := svc.ClinicByName(ctx, demoClinic)
	fresh := followup.ErrorCode(err) == followup.ENOTFOUND
	switch {
	case fresh:
		if clinic, err = svc.CreateClinic(ctx, demoClinic, "Asia/Shanghai"); err != nil {
			return err
		}
		if _, err := acc.CreateUser(ctx, followup.SystemActor(clinic.ID), accounts.NewUser{ClinicID: clinic.ID,
			Email: demoEmail, Name: "Dr. Demo", Role: followup.RoleAdmin, Password: password}); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := acc.SetPassword(ctx, followup.SystemActor(clinic.ID), demoEmail, password); err != nil {
			return err
		}
	}
	user, err := acc.UserByEmail(ctx, followup.SystemActor(clinic.ID), demoEmail)
	if err != nil {
		return err
	}
	clinician := followup.Actor{Kind: followup.ActorUser, ID: user.ID, ClinicID: clinic.ID, Role: user.Role}

	var procID uuid.UUID
	if fresh {
		proc, err := seedDemoPatient(ctx, svc, clinician, stderr)
		if err != nil {
			return err
		}
		procID = proc.ID
	} else {
		list, err := svc.ListProcedures(ctx, clinician, followup.ProcedureFilter{Status: followup.StatusActive, Limit: 1})
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return errors.New("demo: the demo clinic has no active procedure left; remove the demo data to seed it again")
		}
		procID = list[0].ID
	}
	link, err := svc.CreateLink(ctx, clinician, procID, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nDemo data is ready.\n  Clinician login: %s\n  Password:        %s\n  Parent link:     %s\n\n", demoEmail, password, link.URL)
	return nil
}

func seedDemoPatient(ctx context.Context, svc *followup.Service, clinician followup.Actor, stderr io.Writer) (followup.Enrolment, error) {
	patient, err := svc.CreatePatient(ctx, clinician, followup.NewPatient{DisplayName: "Mei Demo", BirthDate: time.Now().AddDate(-1, -2, 0).Format(time.DateOnly),
		MRN: "DEMO-0001", GuardianEmail: "parent@demo.dermfollow.example", PreferredLanguage: "zh-CN", ResearchConsent: true})
	if err != nil {
		return followup.Enrolment{}, err
	}
	performed := time.Now().AddDate(0, 0, -15).Truncate(time.Hour)
	proc, err := svc.Enrol(ctx, clinician, followup.NewProcedure{PatientID: patient.ID.String(), Protocol: "pws-hemoporfin-pdt",
		BodySite: "face", PerformedAt: performed.Format(time.RFC3339)})
	if err != nil {
		return followup.Enrolment{}, err
	}
	link, err := svc.CreateLink(ctx, clinician, proc.ID, false)
	if err != nil {
		return followup.Enrolment{}, err
	}
	parent, err := svc.ResolveLink(ctx, link.URL[len(link.URL)-43:])
	if err != nil {
		return followup.Enrolment{}, err
	}
	fmt.Fprintln(stderr, "demo: drawing synthetic photos...")
	now := time.Now()
	for i, tp := range proc.Timepoints {
		if tp.DueAt.After(now) {
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
				return followup.Enrolment{}, fmt.Errorf("demo photo %s/%s: %w", tp.Key, view, err)
			}
		}
	}
	for {
		n, err := svc.MakeThumbnails(ctx, 16)
		if err != nil {
			return followup.Enrolment{}, err
		}
		if n == 0 {
			break
		}
	}
	return proc, nil
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

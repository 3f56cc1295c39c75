// Package protocols holds follow-up protocols and grading scales as data, and computes schedules.
//
// A protocol says which photos a family or the clinic takes after a procedure, when, from which
// views, and what care goes with each step, in English (EN) and Simplified Chinese (ZH). Protocols
// and scales are YAML files: the shipped ones are embedded in the binary, and a clinic can add
// its own from a folder (README.md in this directory documents the format). Everything here is
// pure: no database, no HTTP, no clock (the caller passes "now").
//
// The pieces:
//
//   - LoadRegistry loads and validates every protocol version and scale. A procedure keeps the
//     version it was enrolled with (Registry.Get); new procedures use Registry.Latest.
//   - ValidateFile checks one file; its *ValidationError lists every problem as
//     "file:line: field: message".
//   - Protocol.Schedule places the timepoints on the clinic's calendar: day offsets count
//     calendar days in the clinic's zone, hour offsets are exact durations.
//   - Due.State and States say where each timepoint stands: upcoming, open, overdue, missed or
//     complete.
//   - Protocol.WriteTable and Registry.WriteList print what the CLI shows.
//
// Example:
//
//	reg, err := protocols.LoadRegistry(os.Getenv("DERMFOLLOW_PROTOCOL_DIR")) // "" = shipped only
//	if err != nil {
//		return err // a *protocols.ValidationError lists every problem of every file
//	}
//	p, err := reg.Get(procedure.Protocol, procedure.ProtocolVersion)
//	if err != nil {
//		return err
//	}
//	dues := p.Schedule(procedure.PerformedAt, clinicZone)
//	states := protocols.States(dues, receivedViews, now)
//	fmt.Println(dues[0].Key, dues[0].DueOn, states[0]) // baseline 2025-06-01 complete
package protocols

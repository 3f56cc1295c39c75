package followup

import (
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A procedure's clinic pages (the timeline above all) list its photos, grades, messages, parent
// links and reminders: five queries per page, about a third of the CPU a page costs the machine
// (PostgreSQL's part included), for rows that change a few times a day. So each process keeps the
// rows it read, labelled with the procedure's rows version, which database triggers replace with
// a new random one on every change to any of those rows
// (migrations/00008_procedure_row_versions.sql). A page reads the procedure with its patient and
// clinic, as always, and with them the version; the kept rows are used only when their label
// equals it, and read again otherwise.
//
// The cache keeps rows, never access: the procedure's read is scoped to the actor's clinic, and
// a procedure out of scope is not found before anything kept is used or kept.
//
// Why kept rows are never older than their label: the rows are read after the version, in the
// same batch or a later one, each statement seeing at least what the ones before it saw, and a
// change to a row replaces the version in the same transaction. So kept rows may be newer than
// their label, which only costs a read the next time, but never older.
type recordCache struct {
	c procedureCache[recordRows]
}

// maxCachedRecords bounds the cache: a procedure's rows are a few KB (a timeline of 25 photos,
// about 10 KB).
const maxCachedRecords = 1024

// recordRows are the rows of a procedure that its rows version labels.
type recordRows struct {
	version     uuid.UUID // uuid.Nil: no listed row has changed since enrolment
	photos      []Photo
	assessments []Assessment
	messages    []Message
	links       []ParentLink
	reminders   []Reminder
}

// copy returns rows whose slices the caller may reorder or change; elements' own pointers
// (optional times and ids) are shared, and nobody changes what they point to.
func (r recordRows) copy() recordRows {
	return recordRows{r.version, slices.Clone(r.photos), slices.Clone(r.assessments), slices.Clone(r.messages),
		slices.Clone(r.links), slices.Clone(r.reminders)}
}

func (c *recordCache) put(procedure uuid.UUID, r recordRows) {
	c.c.store(procedure, r.copy(), maxCachedRecords)
}

// queueRecordRows queues the reads of the rows a procedure's rows version labels, within clinic.
func queueRecordRows(b *pgx.Batch, clinic, procedure uuid.UUID, dst *recordRows) {
	queuePhotos(b, clinic, procedure, &dst.photos)
	queueMessages(b, clinic, procedure, &dst.messages)
	queueAssessments(b, clinic, procedure, &dst.assessments)
	queueLinks(b, clinic, procedure, &dst.links)
	queueReminders(b, clinic, procedure, &dst.reminders)
}

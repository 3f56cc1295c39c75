package followup

// waitingPage is the page of the worklist's new-message filter: the active
// procedures whose family has written without an answer, oldest waiting first, by keyset on
// (waiting_since, procedure_id) through worklist_entries_waiting (the entries' waiting_since
// is kept by a trigger on messages: migrations/00019_conversation.sql). cmp and dir are the
// keyset's comparison and direction; the cursor's rank ($4) plays no part in this order.
func (q worklistQuery) waitingPage(cmp, dir string) string {
	key := "(waiting_since, procedure_id) " + cmp + " ($5::timestamptz, $6::uuid) and $4::integer is not null"
	order := "waiting_since " + dir + ", procedure_id " + dir
	if q.search {
		return q.searchRanked() + `, page as (
			select procedure_id, 0 as rank, waiting_since as performed_at from ranked
			where waiting_since is not null and ` + key + `
			order by ` + order + ` limit $7)`
	}
	return q.urgent() + `, page as (
		select procedure_id, 0 as rank, waiting_since as performed_at from worklist_entries
		where clinic_id = $1 and status = 'active' and waiting_since is not null and ` + key + `
		order by ` + order + ` limit $7)`
}

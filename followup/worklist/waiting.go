package worklist

// waitingPage is the page of the worklist's new-message filter: the active
// procedures whose family has written without an answer, oldest waiting first, by keyset on
// (waiting_since, procedure_id) through worklist_entries_waiting (the entries' waiting_since
// is kept by a trigger on messages: migrations/00019_conversation.sql). cmp and dir are the
// keyset's comparison and direction; the cursor's rank ($4) plays no part in this order.
func (q worklistQuery) waitingPage(cmp, dir string) string {
	key := "(e.waiting_since, e.procedure_id) " + cmp + " ($5::timestamptz, $6::uuid) and $4::integer is not null"
	order := "e.waiting_since " + dir + ", e.procedure_id " + dir
	if q.search {
		return q.searchRanked() + `, page as (
			select procedure_id, 0 as rank, waiting_since as performed_at, overdue, due_today from ranked e
			where waiting_since is not null and ` + key + `
			order by ` + order + ` limit $7)`
	}
	return q.urgent() + `, page as (
		select e.procedure_id, 0 as rank, e.waiting_since as performed_at, coalesce(u.overdue, 0) as overdue,
			coalesce(u.due_today, 0) as due_today
		from worklist_entries e left join urgent u on u.procedure_id = e.procedure_id
		where e.clinic_id = $1 and e.status = 'active' and e.waiting_since is not null and ` + key + `
		order by ` + order + ` limit $7)`
}

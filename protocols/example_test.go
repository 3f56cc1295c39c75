package protocols_test

import (
	"fmt"
	"log"
	"time"

	"github.com/dermfollow/dermfollow/protocols"
)

func Example() {
	reg, err := protocols.LoadRegistry("") // shipped protocols only
	if err != nil {
		log.Fatal(err)
	}
	p, err := reg.Latest("pws-hemoporfin-pdt")
	if err != nil {
		log.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		log.Fatal(err)
	}
	performed := time.Date(2025, 6, 1, 23, 30, 0, 0, shanghai)
	now := time.Date(2025, 6, 5, 9, 0, 0, 0, shanghai)
	received := map[string]map[string]bool{
		"baseline":        {"front": true, "left-oblique": true, "right-oblique": true, "close-up": true},
		"after-treatment": {"front": true, "left-oblique": true, "right-oblique": true},
		"day-1":           {"front": true},
	}
	dues := p.Schedule(performed, shanghai)
	for i, state := range protocols.States(dues, received, now) {
		d := dues[i]
		fmt.Printf("%-16s %s  %s..%s  %s\n", d.Key, d.DueOn, d.WindowStart, d.WindowEnd, state)
	}
	// Output:
	// baseline         2025-06-01  2025-06-01..2025-06-01  complete
	// after-treatment  2025-06-01  2025-06-01..2025-06-01  complete
	// day-1            2025-06-02  2025-06-02..2025-06-02  overdue
	// day-4            2025-06-05  2025-06-04..2025-06-06  open
	// week-1           2025-06-08  2025-06-07..2025-06-09  upcoming
	// week-2           2025-06-15  2025-06-13..2025-06-17  upcoming
	// week-4           2025-06-29  2025-06-26..2025-07-02  upcoming
	// week-8           2025-07-27  2025-07-22..2025-07-27  upcoming
}

package failover

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rep)
}

// WriteText writes the report for people: verdict, counters, the
// timeline of events and per-path IOPS.
func WriteText(w io.Writer, rep *Report) {
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL: " + rep.Reason
	}
	fmt.Fprintf(w, "scenario %s against %s: %s\n", rep.Scenario, rep.Target, verdict)
	for i, p := range rep.Paths {
		fmt.Fprintf(w, "  path%d %s\n", i+1, p)
	}
	fmt.Fprintf(w, "  I/Os %d, failed to the application %d, retried %d, verify mismatches %d (%d blocks verified)\n",
		rep.IOs, rep.Failed, rep.Retried, rep.VerifyErrors, rep.Verified)
	if rep.Held > 0 {
		fmt.Fprintf(w, "  held for a lost path's controller to quiesce before the retry: %d I/Os, %v in all\n", rep.Held, rep.HeldTime.Round(1e6))
	}
	fmt.Fprintf(w, "  longest stall %v, total stall %v (gaps over %v)\n", rep.LongestStall.Round(1e6), rep.StallTotal.Round(1e6), rep.StallThreshold)
	if rep.Err != "" {
		fmt.Fprintf(w, "  error: %s\n", rep.Err)
	}
	fmt.Fprintln(w, "timeline:")
	ei := 0
	for _, s := range rep.Samples {
		for ei < len(rep.Events) && rep.Events[ei].At <= s.At {
			e := rep.Events[ei]
			fmt.Fprintf(w, "  %8.3fs  %-8s %s\n", e.At.Seconds(), e.Who, e.What)
			ei++
		}
		var cols []string
		for i, v := range s.IOPS {
			cols = append(cols, fmt.Sprintf("path%d %7.0f", i+1, v))
		}
		fmt.Fprintf(w, "  %8.3fs  iops     %s\n", s.At.Seconds(), strings.Join(cols, "  "))
	}
	for ; ei < len(rep.Events); ei++ {
		e := rep.Events[ei]
		fmt.Fprintf(w, "  %8.3fs  %-8s %s\n", e.At.Seconds(), e.Who, e.What)
	}
}

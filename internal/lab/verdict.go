package lab

import (
	"fmt"
	"time"
)

// Verdict is whether the seed's failure happened in a run: container
// traffic stopped while the cable was out although the other NIC was up.
type Verdict struct {
	Lost, Sent int // all requests
	// WindowLost of WindowSent requests were lost between a grace period
	// after the pull and the restore.
	WindowLost, WindowSent int
	Longest                time.Duration // the longest outage
	Happened               bool
	Ping                   PingResult
}

// failoverGrace is how long after the pull traffic may still be lost
// without that counting as the seed's failure.
const failoverGrace = 250 * time.Millisecond

// judge gives run's verdict.
func judge(run *PullRun) Verdict {
	v := Verdict{Lost: run.Ping.Lost(), Sent: run.Ping.Transmitted, Ping: run.Ping}
	v.WindowLost, v.WindowSent = run.LostBetween(run.Pulled.Add(failoverGrace), run.Restored)
	v.Happened = v.WindowSent > 0 && 2*v.WindowLost > v.WindowSent
	for _, o := range outages(run) {
		end := o.End
		if end.IsZero() && len(run.Sent) > 1 {
			end = run.Sent[len(run.Sent)-1]
		}
		v.Longest = max(v.Longest, end.Sub(o.Start))
	}
	return v
}

// String gives the losses and the longest outage, and says whether the
// seed's failure happened.
func (v Verdict) String() string {
	s := fmt.Sprintf("%s; longest outage %s.\n", v.Ping, millis(v.Longest))
	if v.Happened {
		return s + "The seed's failure HAPPENED: c2 could not reach c1 while node1's eth1 was out, although eth2 was up."
	}
	return s + "The seed's failure did NOT happen: traffic went on over eth2 while eth1 was out."
}

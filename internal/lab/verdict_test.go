package lab

import (
	"strings"
	"testing"
	"time"
)

func TestJudgeFailover(t *testing.T) {
	// A short outage at the pull is a failover, not the seed's failure.
	v := judge(fakeRun(seqs(1001, 1030)))
	if v.Happened || v.Lost != 30 || v.Longest != 30*time.Millisecond {
		t.Errorf("judge = %+v", v)
	}
	if !strings.Contains(v.String(), "did NOT happen") {
		t.Errorf("verdict line %q", v.String())
	}
}

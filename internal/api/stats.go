package api

import (
	"context"
	"net/http"
	"time"
)

// Stats is a snapshot of a team's datapath counters. Counters only grow;
// rates come from two snapshots.
type Stats struct {
	Team         string        `json:"team"`
	Time         time.Time     `json:"time"`
	Members      []MemberStats `json:"members"`
	Buckets      []BucketStats `json:"buckets"`
	EgressDrops  uint64        `json:"egressDrops"`  // frames with no member to take them
	FlowletMoves uint64        `json:"flowletMoves"` // flows moved to another member at a pause (Dynamic)
}

// MemberStats are one member's frames as the team's programs counted them.
type MemberStats struct {
	Name      string `json:"name"`
	TxPackets uint64 `json:"txPackets"`
	TxBytes   uint64 `json:"txBytes"`
	RxPackets uint64 `json:"rxPackets"`
	RxBytes   uint64 `json:"rxBytes"`
	RxDropped uint64 `json:"rxDropped"` // e.g. broadcast copies off the primary
}

// BucketStats is one bucket's member and the load hashed into it.
type BucketStats struct {
	Bucket  int    `json:"bucket"`
	Member  string `json:"member"` // "" when no member holds it
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Stats returns a team's counters.
func (c *Client) Stats(ctx context.Context, name string) (Stats, error) {
	var s Stats
	return s, c.do(ctx, http.MethodGet, teamPath(name, "stats"), nil, &s)
}

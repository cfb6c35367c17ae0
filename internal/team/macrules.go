package team

// MACPolicy says what a SwitchIndependent team does with its MAC when the
// member that owns it (whose own MAC the team wears) stops carrying.
type MACPolicy int

// MAC policies.
const (
	// MACAuto keeps the MAC and verifies the team's neighbours can reach
	// it through the new primary; if they cannot within a short bound
	// (a switch that does not learn), it follows.
	MACAuto MACPolicy = iota
	// MACKeep keeps the team MAC and announces it from the new primary,
	// so learning switches move it to the live port.
	MACKeep
	// MACFollow takes the new primary's own MAC, which any fabric already
	// delivers to that port, and announces the change to the peers.
	MACFollow
)

var macPolicies = enum{"MAC policy", []string{"Auto", "Keep", "Follow"}, []string{"auto", "keep", "follow"}}

func (p MACPolicy) String() string                { return macPolicies.String(int(p)) }
func (p MACPolicy) MarshalText() ([]byte, error)  { return []byte(p.String()), nil }
func (p *MACPolicy) UnmarshalText(b []byte) error { return macPolicies.unmarshal(b, (*int)(p)) }

// ParseMACPolicy accepts "auto", "keep", "follow" in either spelling.
func ParseMACPolicy(s string) (MACPolicy, error) {
	v, err := macPolicies.parse(s)
	return MACPolicy(v), err
}

// MACInput is what the MAC rules look at.
type MACInput struct {
	Mode     Mode
	Policy   MACPolicy
	Owner    string   // the member whose own MAC is the team MAC ("" if none)
	Primary  string   // the primary until now ("" if none)
	Carriers []string // members carrying traffic, in declaration order
	// NoLearning records that an auto team found its fabric does not
	// learn MACs (a verification failed), so it follows at once.
	NoLearning bool
}

// MACPlan is what the rules decide.
type MACPlan struct {
	// Primary carries the team MAC: it sends ARP and neighbour discovery
	// and takes broadcast and multicast.
	Primary string
	// Follow, when set, says the team must take the primary's own MAC.
	Follow bool
	// Verify says an auto team keeps its MAC for now and must check that
	// its neighbours reach it through the new primary.
	Verify bool
	// OwnMAC lists the carriers whose frames leave with their own source
	// MAC rather than the team's.
	OwnMAC map[string]bool
	// Promisc lists the members that must receive a MAC not their own.
	Promisc map[string]bool
	// Announce says the peers must be told (the primary or MAC changed).
	Announce bool
}

// PlanMAC applies Windows' MAC rules (switch independent: the team MAC on
// the primary, other members send with their own; switch dependent: one
// team MAC on every member; see the README's MAC policy). The primary is the owner of
// the team MAC while it carries; otherwise the primary stays where it is,
// so a returning member causes no second move; otherwise the first carrier.
func PlanMAC(in MACInput) MACPlan {
	p := MACPlan{OwnMAC: map[string]bool{}, Promisc: map[string]bool{}}
	carrying := map[string]bool{}
	for _, c := range in.Carriers {
		carrying[c] = true
	}
	switch {
	case carrying[in.Owner]:
		p.Primary = in.Owner
	case carrying[in.Primary]:
		p.Primary = in.Primary
	case len(in.Carriers) > 0:
		p.Primary = in.Carriers[0]
	}
	if p.Primary == "" {
		return p
	}
	p.Announce = p.Primary != in.Primary
	if in.Mode != SwitchIndependent {
		// Switch dependent: one team MAC on every port, the switch spreads
		// it; every member but the owner must accept it.
		for _, c := range in.Carriers {
			if c != in.Owner {
				p.Promisc[c] = true
			}
		}
		return p
	}
	for _, c := range in.Carriers {
		if c != p.Primary {
			p.OwnMAC[c] = true
		}
	}
	if p.Primary != in.Owner {
		switch {
		case in.Policy == MACFollow, in.Policy == MACAuto && in.NoLearning:
			p.Follow, p.Announce = true, true
		case in.Policy == MACAuto && p.Announce:
			p.Verify = true
		}
		if !p.Follow {
			// A temporary primary receives the team MAC, not its own.
			p.Promisc[p.Primary] = true
		}
	}
	return p
}

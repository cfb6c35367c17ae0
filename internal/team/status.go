package team

// LinkState is what the host reports about a member.
type LinkState struct {
	Present bool   // the interface exists
	AdminUp bool   // the interface is administratively up
	Carrier bool   // the link has carrier (IFF_LOWER_UP)
	Waiting bool   // carrier is back but the team's up-delay has not passed
	Speed   uint64 // bit/s, 0 when unknown
	// Unnegotiated marks a Lacp team's member that has carrier but is not
	// Collecting_Distributing: no partner, or one in another aggregation.
	Unnegotiated bool
}

func (l LinkState) usable() bool {
	return l.Present && l.AdminUp && l.Carrier && !l.Waiting && !l.Unnegotiated
}

func (l LinkState) failure() FailureReason {
	switch {
	case !l.Present:
		return NicNotPresent
	case !l.AdminUp:
		return AdministrativeDecision
	case !l.Carrier:
		return PhysicalMediaDisconnected
	case l.Waiting:
		return WaitingForStableConnectivity
	case l.Unnegotiated:
		return LacpNegotiationIssue
	}
	return NoFailure
}

// MemberView is one member as Get-NetLbfoTeamMember shows it.
type MemberView struct {
	Name   string
	Admin  AdminMode
	Oper   OperStatus
	Reason FailureReason
	Speed  uint64 // bit/s
}

// Evaluation is the team's derived state for one set of member states.
type Evaluation struct {
	Members  []MemberView // in declaration order
	Carriers []string     // members that carry traffic, in declaration order
	Status   Status
	Speed    uint64 // bit/s: the sum of the carriers' speeds
}

// Carrying reports whether name carries traffic in e.
func (e *Evaluation) Carrying(name string) bool {
	for _, c := range e.Carriers {
		if c == name {
			return true
		}
	}
	return false
}

// Evaluate derives member and team status. Active members carry traffic
// while usable; the standby member carries only while some active member
// cannot (Windows: a standby replaces a failed active member). With fewer
// carriers than s.MinLinks none carries and the team is Down.
func Evaluate(s *Spec, states map[string]LinkState) Evaluation {
	var e Evaluation
	activeDown := false
	for _, m := range s.Members {
		if m.Mode == AdminActive && !states[m.Name].usable() {
			activeDown = true
		}
	}
	failed := false
	for _, m := range s.Members {
		st := states[m.Name]
		v := MemberView{Name: m.Name, Admin: m.Mode, Speed: st.Speed}
		switch {
		case !st.usable():
			v.Oper, v.Reason = OperFailed, st.failure()
			failed = true
		case m.Mode == AdminStandby && !activeDown:
			v.Oper, v.Reason = OperStandby, AdministrativeDecision
		default:
			v.Oper = OperActive
			e.Carriers = append(e.Carriers, m.Name)
			e.Speed += st.Speed
		}
		e.Members = append(e.Members, v)
	}
	if len(e.Carriers) < s.MinLinks {
		e.Carriers, e.Speed = nil, 0
	}
	switch {
	case len(e.Carriers) == 0:
		e.Status = Down
	case failed:
		e.Status = Degraded
	default:
		e.Status = Up
	}
	return e
}

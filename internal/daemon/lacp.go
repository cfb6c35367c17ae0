package daemon

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/lacp"
	"github.com/nicteam/nicteam/internal/packet"
	"github.com/nicteam/nicteam/internal/team"
)

// lacpTick drives the LACP timers; the protocol's finest is 1 s.
const lacpTick = 100 * time.Millisecond

// lacpRT is a Lacp team's protocol at run time: the pure machines, a socket
// and reader per member, and the ticker. Every field is guarded by
// Daemon.mu; the goroutines check that their lacpRT is still the team's
// before they touch anything.
type lacpRT struct {
	sys   *lacp.System
	cfg   lacp.Config
	socks map[string]*packet.Conn // by member, while it has an ifindex
	stop  context.CancelFunc      // ends the ticker
}

func lacpConfig(t *teamRT) lacp.Config {
	l := t.rec.Spec.Lacp.WithDefaults()
	return lacp.Config{
		SystemPriority: l.SystemPriority, System: mustMAC(t.rec.MAC), Key: l.Key,
		PortPriority: l.PortPriority, Fast: l.Timer == team.LacpFast,
	}
}

func sameLacpConfig(a, b lacp.Config) bool {
	return a.SystemPriority == b.SystemPriority && a.System.String() == b.System.String() &&
		a.Key == b.Key && a.PortPriority == b.PortPriority && a.Fast == b.Fast
}

// syncLACPLocked makes t's LACP run time match its spec and members: it
// starts or stops the protocol with the mode, opens and closes member
// sockets as members come and go, and hands the machines carrier changes.
func (d *Daemon) syncLACPLocked(t *teamRT) {
	if t.rec.Spec.Mode != team.Lacp || t.dp == nil {
		d.stopLACPLocked(t)
		return
	}
	now := time.Now()
	l := t.lacp
	if l == nil {
		l = &lacpRT{cfg: lacpConfig(t), socks: map[string]*packet.Conn{}}
		l.sys = lacp.New(l.cfg, func(member string, frame []byte) {
			if s := l.socks[member]; s != nil {
				if err := s.Send(frame); err != nil {
					d.log.Debug("send LACPDU", "team", t.rec.Spec.Name, "member", member, "err", err)
				}
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		l.stop = cancel
		t.lacp = l
		go d.tickLACP(ctx, t.rec.Spec.Name, l)
	}
	if cfg := lacpConfig(t); !sameLacpConfig(cfg, l.cfg) {
		l.cfg = cfg
		l.sys.SetConfig(now, cfg)
	}
	for member, s := range l.socks {
		if _, ok := t.rec.Spec.Member(member); !ok || t.ifindex[member] != s.Ifindex() {
			d.closePortLocked(t, member)
		}
	}
	for _, m := range t.rec.Spec.Members {
		idx, ok := t.ifindex[m.Name]
		if !ok {
			continue
		}
		if _, open := l.socks[m.Name]; !open {
			s, err := openSlowSocket(idx)
			if err != nil {
				d.log.Error("open LACP socket", "team", t.rec.Spec.Name, "member", m.Name, "err", err)
				continue
			}
			// The ifindex is the port number: stable across restarts and
			// unique in the namespace (lacp picks another if it is 0 or
			// taken after truncation).
			add := l.sys.AddPort
			if t.resumeLACP[m.Name] {
				add = l.sys.ResumePort
			}
			if err := add(now, m.Name, t.macs[m.Name], uint16(idx)); err != nil {
				s.Close()
				d.log.Error("add LACP port", "team", t.rec.Spec.Name, "member", m.Name, "err", err)
				continue
			}
			l.socks[m.Name] = s
			go d.readLACP(t.rec.Spec.Name, l, m.Name, s)
		}
		st := t.links[m.Name]
		l.sys.SetPort(now, m.Name, t.macs[m.Name], st.Present && st.AdminUp && st.Carrier)
	}
	t.resumeLACP = nil // only the first start after adoption resumes
}

// holders lists the members that hold buckets in t's table.
func holders(t *teamRT) map[string]bool {
	held := map[string]bool{}
	for name, idx := range t.ifindex {
		if slices.Contains(t.table[:], uint32(idx)) {
			held[name] = true
		}
	}
	return held
}

// closePortLocked takes a member out of the machines and closes its socket.
func (d *Daemon) closePortLocked(t *teamRT, member string) {
	if s := t.lacp.socks[member]; s != nil {
		s.Close()
	}
	delete(t.lacp.socks, member)
	t.lacp.sys.RemovePort(time.Now(), member)
}

// stopLACPLocked ends t's protocol: ticker, readers and sockets.
func (d *Daemon) stopLACPLocked(t *teamRT) {
	if t.lacp == nil {
		return
	}
	t.lacp.stop()
	for _, s := range t.lacp.socks {
		s.Close()
	}
	t.lacp = nil
}

// lacpStatesLocked adds to the observed link states what LACP says: a
// member with carrier that is not collecting and distributing does not
// carry traffic.
func (d *Daemon) lacpStatesLocked(t *teamRT) map[string]team.LinkState {
	if t.lacp == nil {
		return t.links
	}
	states := make(map[string]team.LinkState, len(t.links))
	for name, st := range t.links {
		st.Unnegotiated = st.Carrier && !t.lacp.sys.CollectingDistributing(name)
		states[name] = st
	}
	return states
}

// rxDisabledLocked says whether the datapath must drop what member
// receives: a LACP port not collecting.
func (t *teamRT) rxDisabledLocked(member string) bool {
	return t.lacp != nil && !t.lacp.sys.CollectingDistributing(member)
}

func (d *Daemon) tickLACP(ctx context.Context, teamName string, l *lacpRT) {
	tk := time.NewTicker(lacpTick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		d.mu.Lock()
		if t := d.teams[teamName]; t != nil && t.lacp == l && l.sys.Tick(time.Now()) {
			d.recomputeLocked(t)
		}
		d.mu.Unlock()
	}
}

// readLACP feeds the LACPDUs received on one member to the machines until
// its socket is no longer the member's (it is closed then, which ends a
// blocked read).
func (d *Daemon) readLACP(teamName string, l *lacpRT, member string, s *packet.Conn) {
	buf := make([]byte, 1514)
	for {
		n, err := s.Recv(buf)
		d.mu.Lock()
		t := d.teams[teamName]
		live := t != nil && t.lacp == l && l.socks[member] == s
		if live && err == nil {
			changed, derr := l.sys.Receive(time.Now(), member, buf[:n])
			if derr != nil {
				d.log.Debug("drop LACPDU", "team", teamName, "member", member, "err", derr)
			}
			if changed {
				d.recomputeLocked(t)
			}
		}
		d.mu.Unlock()
		if !live {
			return
		}
		if err != nil {
			// ENETDOWN once when the member goes down; the socket lives on.
			d.log.Debug("receive LACPDU", "team", teamName, "member", member, "err", err)
		}
	}
}

// lacpView is `nicteam lacp NAME`.
func (d *Daemon) lacpView(name string) (api.Lacp, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.teamLocked(name)
	if err != nil {
		return api.Lacp{}, err
	}
	l := t.rec.Spec.Lacp.WithDefaults()
	v := api.Lacp{
		Team: name, TeamingMode: t.rec.Spec.Mode, LacpTimer: l.Timer, SystemPriority: l.SystemPriority,
		Key: l.Key, PortPriority: l.PortPriority, MinLinks: t.rec.Spec.MinLinks, Ports: []api.LacpPort{},
	}
	if t.lacp == nil {
		return v, nil
	}
	v.Malformed = t.lacp.sys.Malformed()
	for _, p := range t.lacp.sys.Status() {
		v.Ports = append(v.Ports, api.LacpPort{
			Member: p.Name, Actor: lacpInfo(p.Actor), Partner: lacpInfo(p.Partner),
			Receive: p.Rx.String(), Mux: p.Mux.String(), Selected: p.Selected,
		})
	}
	return v, nil
}

func lacpInfo(i lacp.Info) api.LacpInfo {
	return api.LacpInfo{
		SystemPriority: i.SystemPriority, System: net.HardwareAddr(i.System[:]).String(), Key: i.Key,
		PortPriority: i.PortPriority, Port: i.Port, State: uint8(i.State), StateBits: i.State.Names(),
	}
}

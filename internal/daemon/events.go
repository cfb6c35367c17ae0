package daemon

import (
	"sync"
	"time"

	"github.com/nicteam/nicteam/internal/api"
)

// eventLog keeps the most recent events and fans new ones out to followers.
type eventLog struct {
	mu     sync.Mutex
	events []api.Event             // guarded by mu; oldest first, at most max
	subs   map[chan api.Event]bool // guarded by mu
	max    int
}

func newEventLog(max int) *eventLog {
	return &eventLog{max: max, subs: map[chan api.Event]bool{}}
}

func (l *eventLog) add(teamName, kind, member, detail string) {
	e := api.Event{Time: time.Now(), Team: teamName, Kind: kind, Member: member, Detail: detail}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == l.max {
		copy(l.events, l.events[1:])
		l.events = l.events[:l.max-1]
	}
	l.events = append(l.events, e)
	for ch := range l.subs {
		select {
		case ch <- e:
		default: // a follower that cannot keep up misses events rather than stall the daemon
		}
	}
}

// snapshot returns the logged events and, when follow is set, a channel of
// the ones that come after; cancel stops it.
func (l *eventLog) snapshot(follow bool) (past []api.Event, next chan api.Event, cancel func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	past = append([]api.Event(nil), l.events...)
	if !follow {
		return past, nil, func() {}
	}
	ch := make(chan api.Event, 1024)
	l.subs[ch] = true
	return past, ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

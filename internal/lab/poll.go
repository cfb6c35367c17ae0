package lab

import (
	"context"
	"fmt"
	"time"
)

// Poll calls check every `every` until check says it is done, and gives up
// when within has passed (0: only ctx bounds it) or ctx has ended,
// returning what check last said it was waiting for. check returns done and
// an error: done with nil is success, done with an error gives up at once
// (a process that exited, say), not done with an error names what is
// still missing. What the lab waits for happens on its own, on kernel
// events; polling only observes it.
func Poll(ctx context.Context, within, every time.Duration, check func(context.Context) (done bool, err error)) error {
	if within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, within)
		defer cancel()
	}
	for {
		done, err := check(ctx)
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(every):
		}
	}
}

// Sleep waits for d, or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

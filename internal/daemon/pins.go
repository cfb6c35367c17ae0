package daemon

import (
	"fmt"
	"log/slog"

	"github.com/nicteam/nicteam/internal/datapath"
)

// pinDir returns the directory for this namespace's teams under bpffs,
// after removing the pins of namespaces that are gone and moving this
// namespace's teams from the layout of older releases, where the restore
// adopts them (datapath.TidyPins). Daemons in different namespaces share one
// bpffs and may each have a Team0: the namespace's cookie keeps them apart.
// What could not be tidied is logged and left for the next start.
func pinDir(bpffs string, log *slog.Logger) (string, error) {
	dir, done, err := datapath.TidyPins(bpffs)
	for _, d := range done {
		log.Info("pins", "tidied", d)
	}
	if dir == "" {
		return "", fmt.Errorf("pin directory: %w", err)
	}
	if err != nil {
		log.Warn("pins", "err", err)
	}
	return dir, nil
}

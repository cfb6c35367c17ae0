package cli

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nicteam/nicteam/internal/api"
	"github.com/nicteam/nicteam/internal/config"
)

func (c *command) apply(args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	file := fs.String("f", "", "teams file (YAML); - reads standard input")
	prune := fs.Bool("prune", false, "also remove the teams the file does not name")
	dry := fs.Bool("dry-run", false, "print what would change and change nothing")
	o := output(fs)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *file == "" {
		return usagef("-f FILE is required (- for standard input)")
	}
	var b []byte
	var err error
	if *file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(*file)
	}
	if err != nil {
		return err
	}
	f, err := config.Parse(b, nil)
	if err != nil {
		return err
	}
	changes, err := c.client.Apply(c.ctx, api.Apply{Teams: f.Teams, Prune: *prune, DryRun: *dry})
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []api.Change{}
	}
	return c.emit(*o, changes, func(w io.Writer) {
		if len(changes) == 0 {
			fmt.Fprintln(w, "no changes")
			return
		}
		for _, ch := range changes {
			if *dry {
				fmt.Fprint(w, "would ")
			}
			fmt.Fprintf(w, "%s %s", ch.Action, ch.Team)
			if ch.Member != "" {
				fmt.Fprintf(w, " %s", ch.Member)
			}
			fmt.Fprintln(w)
		}
	})
}

func (c *command) export(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	teams, err := c.client.Config(c.ctx)
	if err != nil {
		return err
	}
	b, err := config.Marshal(config.File{Teams: teams})
	if err != nil {
		return err
	}
	_, err = c.out.Write(b)
	return err
}

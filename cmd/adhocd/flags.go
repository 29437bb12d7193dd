package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// newFlagSet returns a flag set whose usage text lists every flag with the
// environment variable that also sets it.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  --%s\n    \t%s (env %s", f.Name, f.Usage, envName(f.Name))
			if f.DefValue != "" {
				fmt.Fprintf(out, ", default %q", f.DefValue)
			}
			fmt.Fprintln(out, ")")
		})
	}
	return fs
}

// envName is the ADHOCD_* environment variable of a flag: --c2s-tls is ADHOCD_C2S_TLS.
func envName(flagName string) string {
	return "ADHOCD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags applies ADHOCD_* environment variables to the flags that were not
// given on the command line, so that flags override the environment.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// parseInterspersed is parseFlags for commands whose flags may come before
// and after their arguments (`user add alice@x --admin`); it returns the
// arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

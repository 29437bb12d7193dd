package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// precedence is the usage texts' rule of which setting wins.
const precedence = `A flag on the command line wins over its ADHOCD_* environment variable,
the variable over the --config file, the file over the default.`

// newFlagSet returns a flag set with --config, whose usage text lists every
// flag with the environment variable that also sets it.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", "", `YAML file of settings whose keys are the flag names (domain: example.org); empty: none`)
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
		fmt.Fprintf(out, "\n%s\n", precedence)
	}
	return fs
}

// envName is the ADHOCD_* environment variable of a flag: --c2s-tls is ADHOCD_C2S_TLS.
func envName(flagName string) string {
	return "ADHOCD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags sets the flags of fs, made by newFlagSet for command cmd
// ("serve", "user add": see commandFlags), from args, then from the ADHOCD_*
// environment and the --config file for the flags not on the command line.
// It returns the arguments; with interspersed, flags may also come after
// them (`user add alice@x --admin`).
func parseFlags(fs *flag.FlagSet, cmd string, args []string, interspersed bool) ([]string, error) {
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if !interspersed || fs.NArg() == 0 {
			positional = append(positional, fs.Args()...)
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	if err := applyConfigFile(fs, cmd, onCommandLine); err != nil {
		return nil, err
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return positional, err
}

// configPath is the --config flag, or else ADHOCD_CONFIG, and how it was
// given, for messages.
func configPath(fs *flag.FlagSet, onCommandLine map[string]bool) (path, from string) {
	if onCommandLine["config"] {
		return fs.Lookup("config").Value.String(), "--config"
	}
	return os.Getenv(envName("config")), envName("config")
}

// stringList is a repeatable flag; from the environment, commas separate.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// commaList is a comma-separated flag; the last one given counts.
// Unlike a string flag, a config file may write it as a YAML list.
type commaList string

func (l *commaList) String() string { return string(*l) }

func (l *commaList) Set(v string) error {
	*l = commaList(v)
	return nil
}

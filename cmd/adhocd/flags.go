package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// precedence is the usage texts' rule of which setting wins.
const precedence = `A flag on the command line wins over its ADHOCD_* environment variable,
the variable over the --config file, the file over the default.
Only serve's flags (--data and --domain among them) and --config are settings,
with a variable and a key in the file; the other flags of a command are given
on the command line only.`

// newFlagSet returns a flag set with --config, whose usage text lists every
// flag with the environment variable that also sets it, if any.
// parseFlags prints the usage text for -h and --help only.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", "", `YAML file of settings whose keys are the flag names (domain: example.org); empty: none`)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			var notes []string
			if isSetting(f.Name) {
				notes = append(notes, "env "+envName(f.Name))
			}
			if f.DefValue != "" {
				notes = append(notes, fmt.Sprintf("default %q", f.DefValue))
			}
			fmt.Fprintf(out, "  --%s\n    \t%s", f.Name, f.Usage)
			if len(notes) > 0 {
				fmt.Fprintf(out, " (%s)", strings.Join(notes, ", "))
			}
			fmt.Fprintln(out)
		})
		fmt.Fprintf(out, "\n%s\n", precedence)
	}
	return fs
}

// envName is the ADHOCD_* environment variable of a flag: --c2s-tls is ADHOCD_C2S_TLS.
func envName(flagName string) string {
	return "ADHOCD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// isSetting reports whether the flag name is a setting, with an ADHOCD_*
// variable and a config file key: a flag of serve, or --config.
// The other flags of the offline commands (--name, --json, --limit, ...)
// are given on the command line only, so that a variable a shell holds for
// something else cannot change them.
func isSetting(name string) bool {
	if name == "config" {
		return true
	}
	serve := flag.NewFlagSet("serve", flag.ContinueOnError)
	defineServeFlags(serve, &serveFlags{})
	return serve.Lookup(name) != nil
}

// parseFlags sets the flags of fs, made by newFlagSet for command cmd
// ("serve", "user add": see commandFlags), from args, then from the ADHOCD_*
// environment and the --config file for the settings not on the command
// line.
// It returns the arguments; with interspersed, flags may also come after
// them (`user add alice@x --admin`).
// A bad value or an unknown flag is one line; only -h and --help print the
// usage text, and return flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, cmd string, args []string, interspersed bool) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard) // the flag package prints its own message, then ours is returned
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var valueErr error
	fs.VisitAll(func(f *flag.Flag) { f.Value = &checkedValue{Value: f.Value, flag: f, err: &valueErr} })
	defer fs.VisitAll(func(f *flag.Flag) { f.Value = unwrap(f.Value) })

	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			switch {
			case errors.Is(err, flag.ErrHelp):
				fs.SetOutput(out)
				usage()
				return nil, err
			case valueErr != nil:
				return nil, valueErr
			}
			return nil, flagError(fs, err)
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
		if onCommandLine[f.Name] || err != nil || !isSetting(f.Name) {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := unwrap(f.Value).Set(v); e != nil {
				err = fmt.Errorf("%s: %s", envName(f.Name), badValue(f, v))
			}
		}
	})
	return positional, err
}

// checkedValue is a flag's value during parseFlags: it keeps the message
// of a value the flag refuses, which the flag package's own error lacks.
type checkedValue struct {
	flag.Value
	flag *flag.Flag
	err  *error
}

func (v *checkedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil {
		*v.err = fmt.Errorf("--%s: %s", v.flag.Name, badValue(v.flag, s))
	}
	return err
}

// IsBoolFlag tells the flag package that --admin alone is --admin=true.
func (v *checkedValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// unwrap returns the value that a checkedValue holds, or v.
func unwrap(v flag.Value) flag.Value {
	if c, ok := v.(*checkedValue); ok {
		return c.Value
	}
	return v
}

// badValue is the message for a value that flag f does not take, with an
// example of one it takes: `"5" is not a duration; write 5m or 30s`.
// The caller puts the flag, variable or file:line:key before it.
func badValue(f *flag.Flag, value string) string {
	switch kindOf(unwrap(f.Value)) {
	case kindDuration:
		return fmt.Sprintf("%q is not a duration; write 5m or 30s", value)
	case kindBool:
		return fmt.Sprintf("%q is not a boolean; write true or false", value)
	case kindInt:
		if _, err := strconv.ParseInt(value, 0, 64); errors.Is(err, strconv.ErrRange) || wholeNumber.MatchString(value) {
			return fmt.Sprintf("%q is out of range; write a number such as %s", value, f.DefValue)
		}
		return fmt.Sprintf("%q is not a whole number; write a number such as %s", value, f.DefValue)
	case kindFloat:
		if _, err := strconv.ParseFloat(value, 64); errors.Is(err, strconv.ErrRange) {
			return fmt.Sprintf("%q is out of range; write a number such as %s or 0.5", value, f.DefValue)
		}
		return fmt.Sprintf("%q is not a number; write a number such as %s or 0.5", value, f.DefValue)
	}
	return fmt.Sprintf("%q is not a valid value", value) // strings and lists take any text
}

// example is a value of flag f, for messages.
func example(f *flag.Flag) string {
	switch kindOf(unwrap(f.Value)) {
	case kindDuration:
		return "5m"
	case kindInt, kindFloat:
		return f.DefValue
	}
	if f.DefValue != "" {
		return f.DefValue
	}
	return strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// flagError rewrites an error of the flag package other than a bad value
// as one line that says what to do.
func flagError(fs *flag.FlagSet, err error) error {
	help := fmt.Sprintf("run 'adhocd %s --help' for the flags", fs.Name())
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if guess := closestKey(name, fs); guess != "" {
			return fmt.Errorf("unknown flag --%s (did you mean --%s?); %s", name, guess, help)
		}
		return fmt.Errorf("unknown flag --%s; %s", name, help)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		if f := fs.Lookup(name); f != nil {
			return fmt.Errorf("--%s needs a value; write --%s %s", name, name, example(f))
		}
	}
	return fmt.Errorf("%s; %s", msg, help)
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

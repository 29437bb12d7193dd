package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The --config file is a YAML mapping whose keys are the flag names:
//
//	domain: example.org
//	c2s-tls: ":5223"
//	admins: [a@example.org, b@example.org]
//
// It is read through yaml.Node rather than decoded into a struct, so that
// every error can name the line, and so that the flag set stays the one
// definition of the settings.
// One file serves every command: a command ignores the keys of serve that
// are not its own, and refuses any other, and the flags that only the
// command line gives (see isSetting).

// commandFlags returns the flag definitions of every command that reads a
// config file, by name.
// A scratch flag set made with them checks the file's values without
// touching the real flags.
func commandFlags() map[string]func(*flag.FlagSet) {
	defs := map[string]func(*flag.FlagSet){
		"serve": func(fs *flag.FlagSet) { defineServeFlags(fs, &serveFlags{}) },
		"audit": func(fs *flag.FlagSet) { defineAuditFlags(fs, &auditOptions{}) },
	}
	for _, sub := range []string{"add", "del", "passwd", "list", "disable", "enable"} {
		defs["user "+sub] = func(fs *flag.FlagSet) { defineUserFlags(fs, &userOptions{sub: sub}) }
	}
	for _, sub := range []string{"create", "list", "revoke"} {
		defs["apikey "+sub] = func(fs *flag.FlagSet) { defineAPIKeyFlags(fs, &apikeyOptions{sub: sub}) }
	}
	return defs
}

// configFile is a parsed --config file.
type configFile struct {
	path     string
	settings []setting // in file order
}

// setting is one key of a config file.
type setting struct {
	key   string
	line  int
	value *yaml.Node // aliases resolved
}

// errorf returns an error that starts with the file and line.
func (c *configFile) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", c.path, line, fmt.Sprintf(format, args...))
}

// wholeNumber is an integer too large for YAML's !!int.
var wholeNumber = regexp.MustCompile(`^[-+]?[0-9]+$`)

// yamlLine finds the line in the errors of the YAML parser.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// readConfigFile reads path, given by from (--config or ADHOCD_CONFIG), and
// checks that it is one mapping of names to values, each name once.
func readConfigFile(path, from string) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	c := &configFile{path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return c, nil // empty, or only comments
	case err != nil:
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", path, m[1], strings.TrimPrefix(err.Error(), m[0]))
		}
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var second yaml.Node
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		line := second.Line
		if line == 0 {
			line = doc.Line
		}
		return nil, c.errorf(line, "a second YAML document: the file holds one mapping of flag names to values")
	}
	if len(doc.Content) == 0 {
		return c, nil
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return c, nil // "---" alone
	}
	if root.Kind != yaml.MappingNode {
		return nil, c.errorf(root.Line, "want a mapping of flag names to values, got %s", describe(root))
	}
	first := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, c.errorf(k.Line, "want a flag name as key, got %s", describe(k))
		}
		if line, ok := first[k.Value]; ok {
			return nil, c.errorf(k.Line, "key %q repeated (first at line %d)", k.Value, line)
		}
		first[k.Value] = k.Line
		c.settings = append(c.settings, setting{key: k.Value, line: k.Line, value: v})
	}
	return c, nil
}

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// applyConfigFile reads the --config file of fs, if any, checks every one
// of its settings for command cmd (on a scratch flag set, so that a value
// that a flag or a variable overrides is checked too), and sets the flags
// that neither the command line nor an ADHOCD_* variable sets.
func applyConfigFile(fs *flag.FlagSet, cmd string, onCommandLine map[string]bool) error {
	path, from := configPath(fs, onCommandLine)
	if path == "" {
		return nil
	}
	c, err := readConfigFile(path, from)
	if err != nil {
		return err
	}
	defs := commandFlags()
	scratch := flag.NewFlagSet(cmd, flag.ContinueOnError)
	scratch.SetOutput(io.Discard)
	defs[cmd](scratch)
	serveKeys := flag.NewFlagSet("serve", flag.ContinueOnError)
	defs["serve"](serveKeys)

	type checked struct {
		setting
		text  string   // for Set
		items []string // what check sees: the value, or each element of a list
		lines []int    // of each item
	}
	var own []checked
	for _, s := range c.settings {
		f := scratch.Lookup(s.key)
		if f == nil || !isSetting(s.key) {
			if f == nil && serveKeys.Lookup(s.key) != nil {
				continue // serve's: one file serves every command
			}
			return c.keyError(s, cmd, defs, serveKeys)
		}
		k := kindOf(f.Value)
		if k == kindInt && s.value.ShortTag() == "!!float" && wholeNumber.MatchString(s.value.Value) {
			return c.errorf(s.value.Line, "%s: %s", s.key, badValue(f, s.value.Value)) // YAML made it a float
		}
		if k == kindDuration && s.value.Kind == yaml.ScalarNode && s.value.ShortTag() != "!!str" && s.value.ShortTag() != "!!null" {
			return c.errorf(s.value.Line, "%s: %s", s.key, badValue(f, s.value.Value)) // 30 for 30s
		}
		items, lines, err := k.items(s.value)
		if err != nil {
			return c.errorf(err.line, "%s: %s", s.key, err.msg)
		}
		value := strings.Join(items, ",")
		if err := f.Value.Set(value); err != nil {
			return c.errorf(s.value.Line, "%s: %s", s.key, badValue(f, value))
		}
		own = append(own, checked{setting: s, text: value, items: items, lines: lines})
	}
	// Checked once every value is in, as a check may read another setting.
	for _, s := range own {
		for i, item := range s.items {
			if err := checkSetting(scratch, s.key, item); err != nil {
				return c.errorf(s.lines[i], "%s: %v", s.key, err)
			}
		}
	}
	for _, s := range own {
		if _, inEnv := os.LookupEnv(envName(s.key)); onCommandLine[s.key] || inEnv {
			continue
		}
		if err := fs.Lookup(s.key).Value.Set(s.text); err != nil {
			return c.errorf(s.value.Line, "%s: %v", s.key, err) // the scratch took it: not expected
		}
	}
	return nil
}

// keyError is the error for a key that is not a setting (see isSetting)
// of cmd or of serve: a flag that only the command line gives, or no flag.
func (c *configFile) keyError(s setting, cmd string, defs map[string]func(*flag.FlagSet), serve *flag.FlagSet) error {
	if s.key == "config" {
		return c.errorf(s.line, "key \"config\": a config file cannot name another")
	}
	var owners []string
	for name, define := range defs {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		define(fs)
		if fs.Lookup(s.key) != nil {
			owners = append(owners, "adhocd "+name)
		}
	}
	if len(owners) > 0 {
		slices.Sort(owners)
		return c.errorf(s.line, "key %q is not a setting but a flag of %s, given on the command line only (--%s)",
			s.key, strings.Join(owners, ", "), s.key)
	}
	if guess := closestKey(s.key, serve); guess != "" {
		return c.errorf(s.line, "unknown key %q (did you mean %q?)", s.key, guess)
	}
	return c.errorf(s.line, "unknown key %q", s.key)
}

// closestKey returns the flag of the sets nearest to key, if one is near:
// the same but for case and _ for -, or at most two edits away.
func closestKey(key string, sets ...*flag.FlagSet) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	best, bestDist := "", 3
	for _, fs := range sets {
		fs.VisitAll(func(f *flag.Flag) {
			d := editDistance(norm(key), f.Name)
			if d < bestDist && 2*d <= len(key) {
				best, bestDist = f.Name, d
			}
		})
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// kind is what a flag takes, as a config file writes it.
type kind int

const (
	kindString kind = iota
	kindList        // comma-separated, or a YAML list
	kindBool
	kindInt
	kindFloat
	kindDuration
)

func kindOf(v flag.Value) kind {
	switch v.(type) {
	case *stringList, *commaList:
		return kindList
	}
	if b, ok := v.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return kindBool
	}
	if g, ok := v.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64, uint, uint64:
			return kindInt
		case float64:
			return kindFloat
		case time.Duration:
			return kindDuration
		}
	}
	return kindString
}

// want describes the values of k, for messages.
func (k kind) want() string {
	switch k {
	case kindList:
		return "a string or a list of strings"
	case kindBool:
		return "true or false"
	case kindInt:
		return "an integer"
	case kindFloat:
		return "a number"
	case kindDuration:
		return `a duration like "10s"`
	}
	return "a string"
}

// accepts reports whether k takes the scalar n as it is typed: a quoted
// "true" is not a boolean, nor 30 a duration.
func (k kind) accepts(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	switch tag := n.ShortTag(); k {
	case kindBool:
		return tag == "!!bool"
	case kindInt:
		return tag == "!!int"
	case kindFloat:
		return tag == "!!int" || tag == "!!float"
	case kindDuration:
		return tag == "!!str"
	default:
		return tag != "!!null"
	}
}

// shapeError is a value of the wrong type or shape, at a line.
type shapeError struct {
	line int
	msg  string
}

// items returns the text of n for Set, as one item or, for a list, the
// items of a YAML list or of a comma-separated string, with their lines.
func (k kind) items(n *yaml.Node) ([]string, []int, *shapeError) {
	if k == kindList && n.Kind == yaml.SequenceNode {
		var items []string
		var lines []int
		for _, e := range n.Content {
			e = resolve(e)
			if !kindString.accepts(e) {
				return nil, nil, &shapeError{e.Line, "want a string in the list, got " + describe(e)}
			}
			items, lines = append(items, e.Value), append(lines, e.Line)
		}
		return items, lines, nil
	}
	if !k.accepts(n) {
		return nil, nil, &shapeError{n.Line, "want " + k.want() + ", got " + describe(n)}
	}
	if k == kindList {
		var items []string
		var lines []int
		for _, part := range strings.Split(n.Value, ",") {
			if part = strings.TrimSpace(part); part != "" {
				items, lines = append(items, part), append(lines, n.Line)
			}
		}
		return items, lines, nil
	}
	return []string{n.Value}, []int{n.Line}, nil
}

// describe names what n is, for messages: a list, the string "x", ...
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "no value"
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return "the integer " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	default:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(tag, "!!"), n.Value)
	}
}

// checkSetting checks the value of a setting (or one item of a list) the
// way its command checks the flag, with the other settings in scratch.
func checkSetting(scratch *flag.FlagSet, key, item string) error {
	var err error
	switch key {
	case "domain":
		_, err = parseDomain(item)
	case "admins":
		_, err = parseAdmin(item, scratch.Lookup("domain").Value.String())
	case "pusher-app":
		_, err = parsePusherApp(item, "domain.example") // any domain: only the shape is checked
	case "trusted-proxies":
		_, err = parseProxy(item)
	case "log-level":
		_, err = parseLevel(item)
	case "allowed-origins":
		_, err = parseAllowedOrigin(item)
	}
	return err
}

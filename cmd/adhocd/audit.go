package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/adhocd/adhocd/sessman/session"
)

const auditSynopsis = "adhocd audit [--limit N] [--offset N] [--actor A] [--target T] [--json] [flags]"

// auditTimeFormat is RFC 3339 to the millisecond, the precision of the store.
const auditTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// auditOptions are the flags of one `adhocd audit` run.
type auditOptions struct {
	data   string
	query  session.AuditQuery
	asJSON bool
}

// runAudit runs `adhocd audit [flags]`: it prints the audit of admin actions,
// newest first, one entry a line.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseAudit(args, stderr)
	if err != nil {
		return err
	}
	db, err := openStore("audit", opts.data, false)
	if err != nil {
		return err
	}
	page, err := db.Audit(ctx, opts.query)
	if cerr := db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := printAudit(stdout, page.Items, opts.asJSON); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if page.Count == 0 {
		fmt.Fprintf(stderr, "adhocd audit: no entries (database %s)\n", dbPath(opts.data))
	}
	if shown := opts.query.Offset + len(page.Items); shown < page.Count {
		fmt.Fprintf(stderr, "adhocd audit: %d more entries; --offset %d for the next page\n", page.Count-shown, shown)
	}
	return nil
}

// parseAudit parses the flags of `adhocd audit`.
func parseAudit(args []string, stderr io.Writer) (auditOptions, error) {
	fs := newFlagSet("audit", auditSynopsis)
	fs.SetOutput(stderr)
	var opts auditOptions
	defineAuditFlags(fs, &opts)
	positional, err := parseFlags(fs, "audit", args, false)
	if err != nil {
		return opts, fmt.Errorf("audit: %w", err)
	}
	if len(positional) > 0 {
		return opts, fmt.Errorf("audit: unexpected argument %q (%s)", positional[0], auditSynopsis)
	}
	if err := checkAuditLimit(opts.query.Limit); err != nil {
		return opts, fmt.Errorf("audit: --limit: %w", err)
	}
	if err := checkAuditOffset(opts.query.Offset); err != nil {
		return opts, fmt.Errorf("audit: --offset: %w", err)
	}
	return opts, nil
}

// defineAuditFlags defines the flags of `adhocd audit` on fs.
func defineAuditFlags(fs *flag.FlagSet, opts *auditOptions) {
	fs.StringVar(&opts.data, "data", "./data", "data directory; the database is DIR/adhocd.db")
	fs.IntVar(&opts.query.Limit, "limit", session.DefaultAuditLimit,
		fmt.Sprintf("the most entries to print, 1 to %d", session.MaxAuditLimit))
	fs.IntVar(&opts.query.Offset, "offset", 0, "skip this many of the newest entries")
	fs.StringVar(&opts.query.Actor, "actor", "", "only the entries of this actor (admin@localhost, apikey:<name>, cli, ...)")
	fs.StringVar(&opts.query.Target, "target", "", "only the entries with this target (a JID, session id or key id)")
	fs.BoolVar(&opts.asJSON, "json", false, "print one JSON object a line, with every field")
}

// checkAuditLimit checks --limit.
func checkAuditLimit(n int) error {
	switch {
	case n < 1:
		return fmt.Errorf("%d is less than the minimum of 1", n)
	case n > session.MaxAuditLimit:
		return fmt.Errorf("%d is more than the maximum of %d", n, session.MaxAuditLimit)
	}
	return nil
}

// checkAuditOffset checks --offset.
func checkAuditOffset(n int) error {
	if n < 0 {
		return fmt.Errorf("%d is less than the minimum of 0", n)
	}
	return nil
}

// printAudit prints entries as tab-separated lines (time, actor, auth,
// action, targets joined by commas, outcome, detail; "-" for an empty field)
// or as JSON lines.
func printAudit(stdout io.Writer, entries []session.AuditEntry, asJSON bool) error {
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		if asJSON {
			e.Time = e.Time.UTC()
			if err := enc.Encode(e); err != nil {
				return err
			}
			continue
		}
		fields := []string{e.Time.UTC().Format(auditTimeFormat), e.Actor, e.Auth, e.Action,
			strings.Join(e.Targets, ","), e.Outcome, e.Detail}
		for i, f := range fields {
			fields[i] = auditField(f)
		}
		fmt.Fprintln(w, strings.Join(fields, "\t"))
	}
	return w.Flush()
}

// auditField makes a value fit in one tab-separated field: control
// characters (tabs, line breaks) become spaces, and an empty value is "-".
func auditField(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

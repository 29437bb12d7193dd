package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
)

const apikeyUsage = `Usage: adhocd apikey <command> [flags]

Commands:
  create --name N [--domain D] [--read-only]  create a key and print its secret, once;
         [--quiet | --json]                   --quiet prints the secret alone, --json one
                                              JSON object: KEY=$(adhocd apikey create
                                              --name bot --quiet)
  list                                        print the keys, one a line: id, name, domain,
                                              read-only|read-write, active|revoked <time>,
                                              created <time> (tab-separated)
  revoke ID                                   revoke a key; it is refused at once

A key acts on one XMPP domain (--domain, default localhost), which must be
the one the server on the database serves. A key lists and ends sessions
and blocks users; a read-only key only lists. No key changes accounts or
keys. Only a hash of the secret is stored.
Every create and revoke is recorded in the audit ('adhocd audit').
Run 'adhocd apikey <command> --help' to list the flags.
`

// apikeySynopsis returns the usage line of a subcommand of `adhocd apikey`,
// and false for an unknown one.
func apikeySynopsis(sub string) (string, bool) {
	switch sub {
	case "create":
		return "adhocd apikey create --name N [--domain D] [--read-only] [--quiet | --json] [flags]", true
	case "list":
		return "adhocd apikey list [flags]", true
	case "revoke":
		return "adhocd apikey revoke [flags] ID", true
	}
	return "", false
}

// apikeyOptions are the flags and the argument of one `adhocd apikey` run.
type apikeyOptions struct {
	sub        string // the subcommand
	data       string // data directory
	name       string
	domain     string // canonical, for create
	domainFlag string // --domain as given
	readOnly   bool
	quiet      bool   // create: print the secret alone
	asJSON     bool   // create: print one JSON object
	id         string // for revoke
}

// runAPIKey runs `adhocd apikey <create|list|revoke> [flags] [ID]`.
// It reads nothing from stdin.
func runAPIKey(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apikeyUsage)
		return errors.New("apikey: no command given (create, list, revoke)")
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, apikeyUsage)
		return nil
	}
	opts, err := parseAPIKey(args[0], args[1:], stderr)
	if err != nil {
		return err
	}
	db, err := openStore("apikey "+opts.sub, opts.data, opts.sub == "create")
	if err != nil {
		return err
	}
	if opts.sub == "create" {
		err = checkServed(ctx, db, opts)
	}
	if err == nil {
		err = apikeyDo(ctx, sessman.NewAccounts(sessman.AccountsConfig{}, db, zerolog.Nop()), opts, stdout, stderr)
	}
	if cerr := db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("apikey %s: %w", opts.sub, cerr)
	}
	return err
}

// parseAPIKey parses the flags and the ID of subcommand sub, letting flags
// come before and after the ID.
func parseAPIKey(sub string, args []string, stderr io.Writer) (apikeyOptions, error) {
	synopsis, ok := apikeySynopsis(sub)
	if !ok {
		fmt.Fprint(stderr, apikeyUsage)
		return apikeyOptions{sub: sub}, fmt.Errorf("apikey: unknown command %q (create, list, revoke)", sub)
	}
	fs := newFlagSet("apikey "+sub, synopsis)
	fs.SetOutput(stderr)
	opts := apikeyOptions{sub: sub}
	defineAPIKeyFlags(fs, &opts)
	positional, err := parseFlags(fs, "apikey "+sub, args, true)
	if err != nil {
		return opts, fmt.Errorf("apikey %s: %w", sub, err)
	}

	switch sub {
	case "create":
		if len(positional) > 0 {
			return opts, fmt.Errorf("apikey create: unexpected argument %q (the name goes in --name)", positional[0])
		}
		if opts.name == "" {
			return opts, fmt.Errorf("apikey create: missing --name (%s)", synopsis)
		}
		if opts.quiet && opts.asJSON {
			return opts, errors.New("apikey create: --quiet and --json exclude each other: --quiet prints the secret alone, --json one JSON object")
		}
		served, err := servedDomains(opts.domainFlag)
		if err != nil {
			return opts, fmt.Errorf("apikey create: %w", err)
		}
		for d := range served {
			opts.domain = d
		}
	case "list":
		if len(positional) > 0 {
			return opts, fmt.Errorf("apikey list: unexpected argument %q", positional[0])
		}
	case "revoke":
		switch {
		case len(positional) == 0:
			return opts, fmt.Errorf("apikey revoke: missing ID (%s)", synopsis)
		case len(positional) > 1:
			return opts, fmt.Errorf("apikey revoke: unexpected argument %q after the ID", positional[1])
		}
		opts.id = positional[0]
	}
	return opts, nil
}

// defineAPIKeyFlags defines the flags of `adhocd apikey <opts.sub>` on fs.
func defineAPIKeyFlags(fs *flag.FlagSet, opts *apikeyOptions) {
	fs.StringVar(&opts.data, "data", "./data", "data directory; the database is DIR/adhocd.db")
	if opts.sub == "create" {
		fs.StringVar(&opts.name, "name", "", "the key's name: 1 to 64 printable characters, unique among active keys")
		fs.StringVar(&opts.domainFlag, "domain", "localhost", "the XMPP domain the key acts on")
		fs.BoolVar(&opts.readOnly, "read-only", false, "the key can list but not change anything")
		fs.BoolVar(&opts.quiet, "quiet", false, "print the secret alone, for KEY=$(adhocd apikey create --name bot --quiet)")
		fs.BoolVar(&opts.asJSON, "json", false, "print one JSON object: id, name, domain, read_only, created_at, secret, database")
	}
}

// dbPath is the database of the data directory data, absolute when the
// working directory is known, for messages: which database a command
// opened is the first question when a key or an account seems to be missing.
func dbPath(data string) string {
	path := filepath.Join(data, "adhocd.db")
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// openStore opens the database of the data directory for command cmd (for
// messages).
// With create it makes the directory (0700) and the database; otherwise the
// database must exist, so that a mistyped --data is not taken for an empty
// one.
func openStore(cmd, data string, create bool) (*store.DB, error) {
	path := filepath.Join(data, "adhocd.db")
	if create {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, fmt.Errorf("%s: data directory: %w", cmd, err)
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no database at %s (--data %s); 'adhocd user add' or 'adhocd serve' creates it",
			cmd, dbPath(data), data)
	}
	db, err := store.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return db, nil
}

// checkServed refuses to create a key for a domain that the server on the
// database does not serve: it would refuse the key.
func checkServed(ctx context.Context, db *store.DB, opts apikeyOptions) error {
	served, ok, err := db.ServedDomain(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("apikey create: %w", err)
	case ok && served != opts.domain:
		return fmt.Errorf("apikey create: the server on %s serves %s, not %s: a key for %s would be refused (--domain %s)",
			dbPath(opts.data), served, opts.domain, opts.domain, served)
	}
	return nil
}

// apikeyDo runs the subcommand through the accounts service, which audits
// every create and revoke as the command line's.
// What it creates, and a key it does not find, it reports with the
// database, so that a key made in another data directory than the
// server's is seen at once.
func apikeyDo(ctx context.Context, accounts *sessman.Accounts, opts apikeyOptions, stdout, stderr io.Writer) error {
	var err error
	switch opts.sub {
	case "create":
		var (
			secret string
			key    store.APIKey
		)
		secret, key, err = accounts.CreateAPIKey(ctx, sessman.CommandLine, opts.name, opts.domain, opts.readOnly)
		if err == nil {
			err = printCreatedKey(stdout, opts, key, secret)
		}
	case "list":
		var n int
		if n, err = listAPIKeys(ctx, accounts, stdout); err == nil && n == 0 {
			fmt.Fprintf(stderr, "adhocd apikey list: no API keys (database %s)\n", dbPath(opts.data))
		}
	case "revoke":
		err = revokeKey(ctx, accounts, opts, stdout)
	}
	if err != nil {
		return fmt.Errorf("apikey %s: %w", opts.sub, err)
	}
	return nil
}

// createdKey is the output of `apikey create --json`.
type createdKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Domain    string    `json:"domain"`
	ReadOnly  bool      `json:"read_only"`
	CreatedAt time.Time `json:"created_at"`
	Secret    string    `json:"secret"`
	Database  string    `json:"database"`
}

// printCreatedKey prints a new key: a sentence, the secret alone
// (--quiet) or a JSON object (--json).
func printCreatedKey(stdout io.Writer, opts apikeyOptions, key store.APIKey, secret string) error {
	var err error
	switch {
	case opts.quiet:
		_, err = fmt.Fprintln(stdout, secret)
	case opts.asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		err = enc.Encode(createdKey{ID: key.ID, Name: key.Name, Domain: key.Domain, ReadOnly: key.ReadOnly,
			CreatedAt: key.CreatedAt.UTC(), Secret: secret, Database: dbPath(opts.data)})
	default:
		_, err = fmt.Fprintf(stdout, "API key %s (%s) for %s, read-only: %t: %s\n"+
			"The secret is shown only this once: only its hash is stored (database %s).\n",
			key.ID, key.Name, key.Domain, key.ReadOnly, secret, dbPath(opts.data))
	}
	return err
}

// revokeKey revokes the key opts.id and says so; a key revoked before is
// revoked again (the audit records it) and the output says when it was.
func revokeKey(ctx context.Context, accounts *sessman.Accounts, opts apikeyOptions, stdout io.Writer) error {
	keys, err := accounts.APIKeys(ctx)
	if err != nil {
		return err
	}
	var before *store.APIKey
	for i := range keys {
		if keys[i].ID == opts.id {
			before = &keys[i]
		}
	}
	err = accounts.RevokeAPIKey(ctx, sessman.CommandLine, "", opts.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no API key %s (database %s); 'adhocd apikey list' shows the keys", opts.id, dbPath(opts.data))
	case err != nil:
		return err
	case before != nil && !before.RevokedAt.IsZero():
		_, err = fmt.Fprintf(stdout, "API key %s (%s) was already revoked, at %s\n",
			before.ID, before.Name, before.RevokedAt.UTC().Format(time.RFC3339))
	case before != nil:
		_, err = fmt.Fprintf(stdout, "API key %s (%s) revoked\n", before.ID, before.Name)
	}
	return err
}

// listAPIKeys prints one tab-separated line per key: ID, name, domain,
// read-only or read-write, active or "revoked <time>", "created <time>",
// times in RFC 3339, UTC.
func listAPIKeys(ctx context.Context, accounts *sessman.Accounts, stdout io.Writer) (int, error) {
	keys, err := accounts.APIKeys(ctx)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(stdout)
	for _, k := range keys {
		access, state := "read-write", "active"
		if k.ReadOnly {
			access = "read-only"
		}
		if !k.RevokedAt.IsZero() {
			state = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\tcreated %s\n",
			k.ID, k.Name, k.Domain, access, state, k.CreatedAt.UTC().Format(time.RFC3339))
	}
	return len(keys), w.Flush()
}

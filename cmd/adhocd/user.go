package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman"
	"github.com/adhocd/adhocd/sessman/store"
)

const userUsage = `Usage: adhocd user <command> [flags] [JID]

Commands:
  add [--admin] JID  create an account
  del JID            delete an account
  passwd JID         set a new password
  list               print the accounts, one a line: jid, admin, disabled, last login,
                     blocked until, block reason (tab-separated; - for none)
  disable JID        refuse the account's logins
  enable JID         allow them again (a block stays: see unblock)
  unblock JID        lift the block set by ending the account's sessions with a block

add and passwd read the password from the first line of stdin; when stdin is
a terminal or empty they generate one and print it once.
Flags (--data, --domain, --config) may come before or after the JID;
run 'adhocd user <command> --help' to list them.
`

// userSynopsis returns the usage line of a subcommand of `adhocd user`, and
// false for an unknown one.
func userSynopsis(sub string) (string, bool) {
	switch sub {
	case "add":
		return "adhocd user add [--admin] [flags] JID", true
	case "list":
		return "adhocd user list [flags]", true
	case "del", "passwd", "disable", "enable", "unblock":
		return "adhocd user " + sub + " [flags] JID", true
	}
	return "", false
}

// userOptions are the flags and the argument of one `adhocd user` run.
type userOptions struct {
	sub     string // the subcommand
	data    string // data directory
	domain  string // --domain as given, for messages
	admin   bool
	account jid.JID // the bare account JID; zero for list
}

// runUser runs `adhocd user <add|del|passwd|list|disable|enable|unblock> [flags] [JID]`.
func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return errors.New("user: no command given (add, del, passwd, list, disable, enable, unblock)")
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, userUsage)
		return nil
	}
	opts, err := parseUser(args[0], args[1:], stderr)
	if err != nil {
		return err
	}

	var password string
	generated := false
	if opts.sub == "add" || opts.sub == "passwd" {
		if password, err = readPassword(stdin); err != nil {
			return fmt.Errorf("user %s: %w", opts.sub, err)
		}
		if password == "" {
			password, generated = sessman.NewPassword(), true
		}
	}

	db, err := openStore("user "+opts.sub, opts.data, opts.sub == "add")
	if err != nil {
		return err
	}
	accounts := sessman.NewAccounts(sessman.AccountsConfig{Domain: opts.domain}, db, zerolog.Nop())
	err = userDo(ctx, accounts, opts, password, stdout)
	if cerr := db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("user %s: %w", opts.sub, cerr)
	}
	if err == nil && generated {
		fmt.Fprintf(stdout, "Generated password for %s: %s\n", opts.account, password)
	}
	return err
}

// parseUser parses the flags and the JID of subcommand sub, letting flags
// come before and after the JID, and checks the JID against the domains served.
func parseUser(sub string, args []string, stderr io.Writer) (userOptions, error) {
	synopsis, ok := userSynopsis(sub)
	if !ok {
		fmt.Fprint(stderr, userUsage)
		return userOptions{sub: sub}, fmt.Errorf("user: unknown command %q (add, del, passwd, list, disable, enable, unblock)", sub)
	}
	fs := newFlagSet("user "+sub, synopsis)
	fs.SetOutput(stderr)
	opts := userOptions{sub: sub}
	defineUserFlags(fs, &opts)
	positional, err := parseFlags(fs, "user "+sub, args, true)
	if err != nil {
		return opts, fmt.Errorf("user %s: %w", sub, err)
	}

	served, err := servedDomains(opts.domain)
	if err != nil {
		return opts, fmt.Errorf("user %s: %w", sub, err)
	}
	if sub == "list" {
		if len(positional) > 0 {
			return opts, fmt.Errorf("user list: unexpected argument %q", positional[0])
		}
		return opts, nil
	}
	switch {
	case len(positional) == 0:
		return opts, fmt.Errorf("user %s: missing JID (%s)", sub, synopsis)
	case len(positional) > 1:
		return opts, fmt.Errorf("user %s: unexpected argument %q after the JID", sub, positional[1])
	}
	if opts.account, err = accountJID(positional[0], served, opts.domain); err != nil {
		return opts, fmt.Errorf("user %s: %w", sub, err)
	}
	return opts, nil
}

// defineUserFlags defines the flags of `adhocd user <opts.sub>` on fs.
func defineUserFlags(fs *flag.FlagSet, opts *userOptions) {
	fs.StringVar(&opts.data, "data", "./data", "data directory; the database is DIR/adhocd.db")
	fs.StringVar(&opts.domain, "domain", "localhost", "the XMPP domain served")
	if opts.sub == "add" {
		fs.BoolVar(&opts.admin, "admin", false, "make the account an administrator")
	}
}

// servedDomains parses --domain into the set of canonical domainparts.
func servedDomains(domain string) (map[string]bool, error) {
	d, err := parseDomain(strings.TrimSpace(domain))
	if err != nil {
		return nil, fmt.Errorf("--domain: %q is not a domain name; write example.org", domain)
	}
	return map[string]bool{d: true}, nil
}

// accountJID parses s as the bare JID of an account at a served domain.
func accountJID(s string, served map[string]bool, domainFlag string) (jid.JID, error) {
	j, err := jid.Parse(s)
	switch {
	case err != nil:
		return jid.JID{}, fmt.Errorf("%q is not a valid JID: %w", s, err)
	case j.Resourcepart() != "":
		return jid.JID{}, fmt.Errorf("%q: an account JID has no resource, use %s", s, j.Bare())
	case j.Localpart() == "":
		return jid.JID{}, fmt.Errorf("%q: an account JID needs a user part, like user@%s", s, j.Domainpart())
	case !served[j.Domainpart()]:
		return jid.JID{}, fmt.Errorf("%q: domain %s is not served here (--domain %s)", s, j.Domainpart(), domainFlag)
	}
	return j, nil
}

// userDo runs the subcommand through the accounts service, which audits
// every change as the command line's; a running server learns of it at
// once.
func userDo(ctx context.Context, accounts *sessman.Accounts, opts userOptions, password string, stdout io.Writer) error {
	var err error
	cli, users := sessman.CommandLine, []jid.JID{opts.account}
	switch opts.sub {
	case "add":
		err = accounts.AddUser(ctx, cli, opts.account, password, opts.admin)
	case "del":
		err = accounts.DeleteUsers(ctx, cli, users)
	case "passwd":
		err = accounts.SetPassword(ctx, cli, opts.account, password)
	case "disable", "enable":
		err = accounts.SetDisabled(ctx, cli, users, opts.sub == "disable")
	case "unblock":
		err = unblockUser(ctx, accounts, opts.account, stdout)
	case "list":
		err = listUsers(ctx, accounts, stdout)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("user %s: no account %s (database %s); 'adhocd user list' shows the accounts",
			opts.sub, opts.account, dbPath(opts.data))
	case err != nil:
		return fmt.Errorf("user %s: %w", opts.sub, err)
	case opts.sub == "add":
		fmt.Fprintf(stdout, "Account %s created, admin: %t (database %s)\n", opts.account, opts.admin, dbPath(opts.data))
	}
	return nil
}

// listUsers prints one tab-separated line per account: JID, admin,
// disabled, last login (RFC 3339, UTC, or - for never), the end of its
// block (RFC 3339, UTC) and the block's reason (- for no block or no
// reason; tabs and line breaks in it are spaces).
func listUsers(ctx context.Context, accounts *sessman.Accounts, stdout io.Writer) error {
	users, err := accounts.Users(ctx)
	if err != nil {
		return err
	}
	blocks, err := accounts.Blocks(ctx)
	if err != nil {
		return err
	}
	blocked := make(map[string]store.Block, len(blocks))
	for _, b := range blocks {
		blocked[b.User.String()] = b
	}
	w := bufio.NewWriter(stdout)
	for _, u := range users {
		last := "-"
		if !u.LastLogin.IsZero() {
			last = u.LastLogin.UTC().Format(time.RFC3339)
		}
		until, reason := "-", "-"
		if b, ok := blocked[u.JID.String()]; ok {
			until = b.Until.UTC().Format(time.RFC3339)
			if r := strings.Join(strings.Fields(b.Reason), " "); r != "" {
				reason = r
			}
		}
		fmt.Fprintf(w, "%s\t%t\t%t\t%s\t%s\t%s\n", u.JID, u.Admin, u.Disabled, last, until, reason)
	}
	return w.Flush()
}

// unblockUser lifts the block of user and says whether there was one.
func unblockUser(ctx context.Context, accounts *sessman.Accounts, user jid.JID, stdout io.Writer) error {
	lifted, err := accounts.Unblock(ctx, sessman.CommandLine, []jid.JID{user})
	if err != nil {
		return err
	}
	if len(lifted) == 0 {
		fmt.Fprintf(stdout, "%s was not blocked\n", user)
		return nil
	}
	fmt.Fprintf(stdout, "Block lifted for %s (it was until %s)\n", user, lifted[0].Until.UTC().Format(time.RFC3339))
	return nil
}

// maxPasswordLine bounds what readPassword reads; the store refuses
// passwords over 1024 bytes anyway.
const maxPasswordLine = 4096

// readPassword returns the first line of stdin without its line ending, or
// "" when stdin is a terminal or empty.
func readPassword(stdin io.Reader) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return "", nil
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, maxPasswordLine)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

package sessman

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/adhoc"
	"github.com/adhocd/adhocd/sessman/session"
	"github.com/adhocd/adhocd/sessman/store"
)

// AccountsConfig configures the accounts service. Zero values take the
// defaults shown.
type AccountsConfig struct {
	// Domain is the domain served, e.g. example.org.
	Domain string
	// Admins are administrators named in the configuration, besides the
	// accounts marked admin in the store. Only the bare JID counts.
	Admins []jid.JID
	// CredentialTTL is how long Login remembers a verified password;
	// default 30s. Every change to the account forgets it at once.
	CredentialTTL time.Duration
	// WatchInterval is how often a started service looks for account
	// changes made by other processes (the command line); default 250ms.
	WatchInterval time.Duration
	// LoginInterval is how often last logins are written; default 1s.
	LoginInterval time.Duration
}

// CommandLine is the caller of the adhocd command line, which runs on the
// server's machine with the database file in reach: it may do anything.
var CommandLine = adhoc.Caller{Auth: adhoc.AuthCLI, Name: "cli"}

// Accounts is the accounts service: passwords and SCRAM keys, disabled
// accounts, blocks, who is an admin, API keys. The XMPP listener and the
// HTTP API authenticate through it, the XEP-0133 commands and the command
// line change accounts through it.
//
// Changes made through it are audited with the caller's name and take
// effect at once in this process; a started service also learns of the
// changes other processes make (Start).
// It is safe for concurrent use.
type Accounts struct {
	cfg    AccountsConfig
	db     *store.DB
	log    zerolog.Logger
	domain string          // cfg.Domain, canonical
	admins map[string]bool // bare JIDs
	creds  *credCache

	mu        sync.Mutex
	listeners []func([]session.AccountChange)
	logins    *store.LoginRecorder // nil until Start
	stop      chan struct{}        // closed by Close; nil until Start
	watching  sync.WaitGroup
}

// NewAccounts returns the accounts service of cfg.Domain over db.
// It starts nothing: see Start.
func NewAccounts(cfg AccountsConfig, db *store.DB, logger zerolog.Logger) *Accounts {
	if cfg.CredentialTTL <= 0 {
		cfg.CredentialTTL = 30 * time.Second
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 250 * time.Millisecond
	}
	if cfg.LoginInterval <= 0 {
		cfg.LoginInterval = time.Second
	}
	a := &Accounts{
		cfg:    cfg,
		db:     db,
		log:    logger.With().Str("component", "accounts").Logger(),
		admins: make(map[string]bool, len(cfg.Admins)),
		creds:  newCredCache(cfg.CredentialTTL),
	}
	if d, err := jid.Parse(cfg.Domain); err == nil {
		a.domain = d.Domainpart()
	}
	for _, adm := range cfg.Admins {
		a.admins[adm.Bare().String()] = true
	}
	return a
}

// Start starts what a server needs beyond the command line: last logins
// written in batches, and the watch for account changes made by other
// processes, which drops their cached credentials and tells the listeners
// of OnChange. Close stops both.
func (a *Accounts) Start(ctx context.Context) error {
	after, err := a.db.LastChange(ctx)
	if err != nil {
		return fmt.Errorf("sessman: start accounts: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		return errors.New("sessman: accounts already started")
	}
	a.stop = make(chan struct{})
	a.logins = a.db.NewLoginRecorder(a.cfg.LoginInterval, a.log)
	a.watching.Add(1)
	go a.watch(after)
	return nil
}

// Close stops what Start started and writes the pending last logins.
func (a *Accounts) Close() {
	a.mu.Lock()
	stop, logins := a.stop, a.logins
	a.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	a.watching.Wait()
	logins.Close()
}

// OnChange registers fn to be called with the account changes that other
// processes made, after their cached credentials were dropped.
func (a *Accounts) OnChange(fn func([]session.AccountChange)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.listeners = append(a.listeners, fn)
}

// pruneAfter is how long account changes are kept for other processes.
const pruneAfter = time.Hour

// watch polls the log of account changes until Close.
func (a *Accounts) watch(after int64) {
	defer a.watching.Done()
	t := time.NewTicker(a.cfg.WatchInterval)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		changes, err := a.db.Changes(ctx, after)
		if err != nil {
			a.log.Error().Err(err).Msg("reading account changes failed")
		}
		var foreign []session.AccountChange
		for _, c := range changes {
			after = c.Seq
			if c.Origin == a.db.Origin() {
				continue // taken into account when it was made
			}
			a.log.Info().Str("jid", c.User).Str("action", c.Kind).Msg("account changed by another process")
			a.creds.invalidate(c.User)
			foreign = append(foreign, c)
		}
		if len(foreign) > 0 {
			a.mu.Lock()
			listeners := a.listeners
			a.mu.Unlock()
			for _, fn := range listeners {
				fn(foreign)
			}
		}
		if time.Since(lastPrune) > pruneAfter/4 {
			lastPrune = time.Now()
			if err := a.db.PruneChanges(ctx, lastPrune.Add(-pruneAfter)); err != nil {
				a.log.Warn().Err(err).Msg("pruning account changes failed")
			}
		}
		cancel()
	}
}

// changed drops the cached credentials of users, whose accounts this
// process changed.
func (a *Accounts) changed(users []jid.JID, msg string) {
	for _, u := range users {
		a.log.Info().Stringer("jid", u).Msg(msg)
		a.creds.invalidate(u.Bare().String())
	}
}

// Logins

// SCRAM returns the stored SCRAM keys of user for hash "SHA-1" or
// "SHA-256". It returns session.ErrUnknownUser for an unknown user, and for
// a disabled or blocked one session.ErrDisabled (or a *session.BlockedError)
// together with the keys, so that the proof is checked before the client is
// told.
func (a *Accounts) SCRAM(ctx context.Context, user jid.JID, hash string) (session.SCRAMKeys, error) {
	keys, err := a.db.SCRAM(ctx, user, hash)
	if err == nil {
		err = a.blocked(ctx, user)
	}
	return keys, err
}

// VerifyPassword checks a plain password (SASL PLAIN): session.ErrUnknownUser,
// session.ErrBadPassword, or for the right password of a disabled or
// blocked account session.ErrDisabled or a *session.BlockedError.
func (a *Accounts) VerifyPassword(ctx context.Context, user jid.JID, password string) error {
	err := a.db.VerifyPassword(ctx, user, password)
	if err == nil {
		err = a.blocked(ctx, user)
	}
	return err
}

// blocked refuses a user whose sessions were ended with a block that has
// not ended yet.
func (a *Accounts) blocked(ctx context.Context, user jid.JID) error {
	b, ok, err := a.db.ActiveBlock(ctx, user, time.Now())
	if err != nil || !ok {
		return err
	}
	return &session.BlockedError{Until: b.Until, Reason: b.Reason}
}

// RecordLogin notes that user logged in at at; it is written within a
// second, in a batch (Start), or at once if the service was not started.
func (a *Accounts) RecordLogin(ctx context.Context, user jid.JID, at time.Time) error {
	a.mu.Lock()
	logins := a.logins
	a.mu.Unlock()
	if logins == nil {
		return a.db.RecordLogin(ctx, user, at)
	}
	logins.Record(user, at)
	return nil
}

// Login checks the password of an HTTP caller, remembering it for
// CredentialTTL, and returns the caller with Auth basic, or the errors of
// VerifyPassword. A user of a domain not served here is
// session.ErrNotServed, before any password is looked at.
func (a *Accounts) Login(ctx context.Context, user jid.JID, password string) (adhoc.Caller, error) {
	if !a.serves(user.Domainpart()) {
		return adhoc.Caller{}, fmt.Errorf("%w: %s", session.ErrNotServed, user.Domainpart())
	}
	return a.creds.check(user, password, func() (adhoc.Caller, error) {
		if err := a.VerifyPassword(ctx, user, password); err != nil {
			return adhoc.Caller{}, err
		}
		return a.Caller(ctx, user, adhoc.AuthBasic)
	})
}

// Caller returns the caller of an account that authenticated with auth
// (the XMPP listener's in-band commands): its admin rights looked up now.
func (a *Accounts) Caller(ctx context.Context, user jid.JID, auth string) (adhoc.Caller, error) {
	admin, err := a.IsAdmin(ctx, user)
	if err != nil {
		return adhoc.Caller{}, err
	}
	return adhoc.Caller{JID: user, Auth: auth, Admin: admin, Name: user.Bare().String()}, nil
}

// APIKey returns the caller of an API key: session.ErrUnknownKey for a
// malformed or unknown secret, session.ErrKeyRevoked for a revoked key,
// session.ErrNotServed for a key of a domain not served here. A key is no
// admin: what it may do is the session manager's to decide.
func (a *Accounts) APIKey(ctx context.Context, secret string) (adhoc.Caller, error) {
	key, err := a.db.APIKeyBySecret(ctx, secret)
	if err != nil {
		return adhoc.Caller{}, err
	}
	if !a.serves(key.Domain) {
		return adhoc.Caller{}, fmt.Errorf("%w: API key %s is for %s", session.ErrNotServed, key.ID, key.Domain)
	}
	domain, err := jid.New("", key.Domain, "")
	if err != nil {
		return adhoc.Caller{}, fmt.Errorf("sessman: API key %s names no valid domain: %w", key.ID, err)
	}
	return adhoc.Caller{JID: domain, Auth: adhoc.AuthAPIKey, ReadOnly: key.ReadOnly, Name: "apikey:" + key.Name}, nil
}

// serves reports whether domain (a canonical domainpart) is the one served.
func (a *Accounts) serves(domain string) bool { return domain != "" && domain == a.domain }

// IsAdmin reports whether user (bare or full) is an administrator: a JID
// named in AccountsConfig.Admins, or an account marked admin and not
// disabled. It does not authenticate anyone.
func (a *Accounts) IsAdmin(ctx context.Context, user jid.JID) (bool, error) {
	if a.admins[user.Bare().String()] {
		return true, nil
	}
	if user.Localpart() == "" {
		return false, nil
	}
	acc, err := a.db.User(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sessman: is %s an admin: %w", user.Bare(), err)
	}
	return acc.Admin && !acc.Disabled, nil
}

// Reading accounts

// User returns one account; store.ErrNotFound if there is none.
func (a *Accounts) User(ctx context.Context, user jid.JID) (store.Account, error) {
	return a.db.User(ctx, user)
}

// Users returns every account, ordered by JID.
func (a *Accounts) Users(ctx context.Context) ([]store.Account, error) { return a.db.Users(ctx) }

// APIKeys returns every API key, revoked ones too, in the order they were
// created.
func (a *Accounts) APIKeys(ctx context.Context) ([]store.APIKey, error) { return a.db.APIKeys(ctx) }

// Changing accounts, audited.
// Each method is one admin action: it is recorded in the audit with the
// caller and its outcome, and acknowledged (a nil error) only once the
// entry is written. The errors are the store's. The XEP-0133 commands make
// the same changes and are audited as commands (commands.go).

// AddUser creates an account.
func (a *Accounts) AddUser(ctx context.Context, c adhoc.Caller, user jid.JID, password string, admin bool) error {
	detail := ""
	if admin {
		detail = "admin"
	}
	return a.audited(ctx, c, "user-add", []string{user.Bare().String()}, detail, a.addUser(ctx, user, password, admin))
}

// DeleteUsers deletes accounts, all or none; a running server ends their
// sessions.
func (a *Accounts) DeleteUsers(ctx context.Context, c adhoc.Caller, users []jid.JID) error {
	return a.audited(ctx, c, "user-delete", jidStrings(users), "", a.deleteUsers(ctx, users))
}

// SetDisabled disables or re-enables accounts, all or none; a running
// server ends the sessions of disabled ones.
func (a *Accounts) SetDisabled(ctx context.Context, c adhoc.Caller, users []jid.JID, disabled bool) error {
	action := "user-enable"
	if disabled {
		action = "user-disable"
	}
	return a.audited(ctx, c, action, jidStrings(users), "", a.setDisabled(ctx, users, disabled))
}

// SetPassword gives an account a new password; its sessions stay.
func (a *Accounts) SetPassword(ctx context.Context, c adhoc.Caller, user jid.JID, password string) error {
	return a.audited(ctx, c, "user-password", []string{user.Bare().String()}, "", a.setPassword(ctx, user, password))
}

// Unblock lifts the blocks of users, whose accounts must all exist
// (store.ErrNotFound otherwise, and nothing is lifted), and returns the
// blocks that were in force, in the order of users; a user without one was
// not blocked. It is audited as user-unblock, with what was lifted.
// The login path reads blocks from the store, so a running server lets the
// users in at once, whichever process lifted them.
func (a *Accounts) Unblock(ctx context.Context, c adhoc.Caller, users []jid.JID) ([]store.Block, error) {
	lifted, err := a.unblock(ctx, users)
	var details []string
	for _, u := range users {
		if err != nil {
			break
		}
		i := slices.IndexFunc(lifted, func(b store.Block) bool { return b.User.Equal(u.Bare()) })
		if i < 0 {
			details = append(details, u.Bare().String()+" was not blocked")
			continue
		}
		b := lifted[i]
		details = append(details, fmt.Sprintf("lifted %s until %s, reason %q", b.User, b.Until.Format(time.RFC3339), b.Reason))
	}
	return lifted, a.audited(ctx, c, "user-unblock", jidStrings(users), strings.Join(details, "; "), err)
}

func (a *Accounts) unblock(ctx context.Context, users []jid.JID) ([]store.Block, error) {
	for _, u := range users {
		if _, err := a.db.User(ctx, u); err != nil {
			return nil, err
		}
	}
	var lifted []store.Block
	now := time.Now()
	for _, u := range users {
		b, ok, err := a.db.ClearBlock(ctx, u.Bare(), now)
		if err != nil {
			return lifted, err
		}
		if ok {
			lifted = append(lifted, b)
		}
	}
	a.changed(users, "account unblocked")
	return lifted, nil
}

// ActiveBlock returns the block in force of user and true, or false if it
// may log in.
func (a *Accounts) ActiveBlock(ctx context.Context, user jid.JID) (store.Block, bool, error) {
	return a.db.ActiveBlock(ctx, user, time.Now())
}

// Blocks returns the blocks in force, ordered by user.
func (a *Accounts) Blocks(ctx context.Context) ([]store.Block, error) {
	return a.db.Blocks(ctx, time.Now())
}

// CreateAPIKey creates an API key for domain and returns its secret, which
// is not kept: only its hash is. The key and its audit entry are written in
// one transaction, since a key whose secret was never shown must not be
// left active: by a failed audit, or by a crash between the two.
func (a *Accounts) CreateAPIKey(ctx context.Context, c adhoc.Caller, name, domain string, readOnly bool) (string, store.APIKey, error) {
	access := "read-write"
	if readOnly {
		access = "read-only"
	}
	detail := fmt.Sprintf("name %q, domain %s, %s", name, domain, access)
	secret, key, _, err := a.db.CreateAPIKeyAudited(ctx, name, domain, readOnly, auditEntry(c, "apikey-create", nil, "ok", detail))
	if err != nil {
		// Neither the key nor its entry was written: audit the failure.
		return "", store.APIKey{}, a.audited(ctx, c, "apikey-create", nil, detail, err)
	}
	return secret, key, nil
}

// RevokeAPIKey revokes the API key id of domain (any domain when it is
// empty, for the command line): it is refused from then on. A key of
// another domain is store.ErrNotFound, as one that does not exist. The
// audit names the key by id and name.
func (a *Accounts) RevokeAPIKey(ctx context.Context, c adhoc.Caller, domain, id string) error {
	detail, err := "", error(nil)
	key, found, lerr := a.apiKey(ctx, id)
	switch {
	case lerr != nil:
		err = lerr
	case !found:
		err = a.db.RevokeAPIKey(ctx, id) // the store's own not-found
	case domain != "" && key.Domain != domain:
		err = fmt.Errorf("sessman: API key %s is not of %s: %w", id, domain, store.ErrNotFound)
	default:
		detail = fmt.Sprintf("name %q, domain %s", key.Name, key.Domain)
		if !key.RevokedAt.IsZero() {
			detail += ", already revoked"
		}
		err = a.db.RevokeAPIKey(ctx, id)
	}
	return a.audited(ctx, c, "apikey-revoke", []string{id}, detail, err)
}

// apiKey finds the API key id, revoked or not.
func (a *Accounts) apiKey(ctx context.Context, id string) (store.APIKey, bool, error) {
	keys, err := a.db.APIKeys(ctx)
	if err != nil {
		return store.APIKey{}, false, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k, true, nil
		}
	}
	return store.APIKey{}, false, nil
}

// EnsureAdmin makes sure an admin exists: when no account is one, it
// creates admin@<domain> with password (a random one when it is empty,
// returned as generated), or makes an existing admin@<domain> an admin,
// keeping its password. It reports whether it changed anything.
func (a *Accounts) EnsureAdmin(ctx context.Context, password string) (admin jid.JID, generated string, changed bool, err error) {
	admin, err = jid.New("admin", a.cfg.Domain, "")
	if err != nil {
		return jid.JID{}, "", false, fmt.Errorf("sessman: admin of %q: %w", a.cfg.Domain, err)
	}
	has, err := a.db.HasAdmin(ctx)
	if err != nil || has {
		return admin, "", false, err
	}
	if password == "" {
		password = NewPassword()
		generated = password
	}
	err = a.AddUser(ctx, CommandLine, admin, password, true)
	if errors.Is(err, store.ErrExists) {
		generated = ""
		err = a.audited(ctx, CommandLine, "user-admin", []string{admin.String()}, "no admin existed", a.setAdmin(ctx, admin))
	}
	if err != nil {
		return jid.JID{}, "", false, fmt.Errorf("sessman: making %s an admin: %w", admin, err)
	}
	return admin, generated, true, nil
}

// NewPassword returns a new random password: 18 random bytes, base64url (24
// characters).
func NewPassword() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// The changes themselves, unaudited: the commands audit themselves.

func (a *Accounts) addUser(ctx context.Context, user jid.JID, password string, admin bool) error {
	err := a.db.AddUser(ctx, user, password, admin)
	if err == nil {
		a.changed([]jid.JID{user}, "account added")
	}
	return err
}

func (a *Accounts) deleteUsers(ctx context.Context, users []jid.JID) error {
	err := a.db.DeleteUsers(ctx, users)
	if err == nil {
		a.changed(users, "account deleted")
	}
	return err
}

func (a *Accounts) setDisabled(ctx context.Context, users []jid.JID, disabled bool) error {
	err := a.db.SetUsersDisabled(ctx, users, disabled)
	if err == nil {
		msg := "account re-enabled"
		if disabled {
			msg = "account disabled"
		}
		a.changed(users, msg)
	}
	return err
}

func (a *Accounts) setPassword(ctx context.Context, user jid.JID, password string) error {
	err := a.db.SetPassword(ctx, user, password)
	if err == nil {
		a.changed([]jid.JID{user}, "account password changed")
	}
	return err
}

func (a *Accounts) setAdmin(ctx context.Context, user jid.JID) error {
	err := a.db.SetAdmin(ctx, user, true)
	if err == nil {
		a.changed([]jid.JID{user}, "account made admin")
	}
	return err
}

// block refuses logins of users until until, and drops their cached
// credentials.
func (a *Accounts) block(ctx context.Context, users []jid.JID, until time.Time, reason string) error {
	for _, u := range users {
		if err := a.db.SetBlock(ctx, u.Bare(), until, reason); err != nil {
			return err
		}
	}
	a.changed(users, "account blocked")
	return nil
}

func jidStrings(users []jid.JID) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Bare().String()
	}
	return out
}

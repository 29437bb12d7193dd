// Package store implements the embedded account store of adhocd: one SQLite
// database (the pure Go driver modernc.org/sqlite, no cgo) holding the
// accounts of the session manager, the blocks of kicked users, the API keys
// of scripts and the audit of admin actions.
//
// # Accounts
//
// An account is keyed by its bare JID (localpart@domainpart) and carries an
// admin flag, a disabled flag, its creation time and its last login.
// A JID without a localpart (a bare domain) is never an account.
//
// # Credentials
//
// Passwords are never stored.
// For each of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 §3, RFC 7677) the store
// keeps a random 16-byte salt, the iteration count (4096), StoredKey and
// ServerKey, which is what a SCRAM server needs (see [DB.SCRAM]) and enough to
// check a plain password from SASL PLAIN or HTTP Basic authentication (see
// [DB.VerifyPassword]).
// A password is non-empty, at most 1024 bytes of valid UTF-8, and is used as
// given: no SASLprep or other normalisation is applied.
//
// # Blocks
//
// A block keeps a user (a bare JID) from logging in until it ends, with a
// reason for the client; see [DB.SetBlock] and [DB.ActiveBlock].
// A block is never shortened by a later one, and an ended block reads as no
// block.
//
// # API keys
//
// An API key lets a script act on one XMPP domain, read-only or not.
// The values and errors that leave the package (SCRAM keys, audit entries,
// login errors) are those of package sessman/session.
// Its secret, "adk_<id>_<43 characters of base64url>", is returned once by
// [DB.CreateAPIKey] and never stored: the store keeps its SHA-256, and
// [DB.APIKeyBySecret] compares hashes in constant time.
// The 12-character id is public: it names the key in lists, the audit and
// [DB.RevokeAPIKey].
// A revoked key stays listed.
//
// # Audit
//
// [DB.AppendAudit] appends one admin action (who, how authenticated, what,
// on which targets, with what outcome) and returns once it is on disk;
// [DB.Audit] pages through the entries, newest first, filtered by actor or
// by target.
// Targets are also kept one per row in a side table, so that the target
// filter is an exact match through an index.
//
// # Account changes
//
// Every change to an account (added, deleted, disabled, enabled, new
// password, admin, blocked, unblocked) is logged in the transaction that
// makes it, with the [DB.Origin] of the handle that made it, so that other
// processes on the same database learn of it: [DB.Changes] reads the log
// from a sequence number on. A running server polls it to see what the
// command line changed; the nodes of a cluster would see each other's.
//
// # Durability and schema
//
// The database runs in WAL mode with synchronous=FULL, so a write that
// returned without error survives a crash, and with foreign keys enforced.
// Every write is one transaction: nothing is half-written on error.
// A [DB] is safe for concurrent use.
//
// The schema is plain SQL that PostgreSQL can also run (BIGINT unix
// milliseconds for times, BOOLEAN flags, base64 TEXT for salts and keys,
// $n placeholders), so that a shared PostgreSQL store can later use the same
// tables; the one exception, the audit's self-assigned id, is noted in the
// migration.
// Its version is kept in PRAGMA user_version; [Open] applies the migrations a
// database file has not seen yet.
//
// # Imports
//
// sessman/session, for the values that leave the package; nothing else of
// adhocd. Only sessman and the command line (cmd) use it: the transports
// reach accounts through the accounts service of sessman.
package store

package c2s

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // SCRAM-SHA-1 is defined on SHA-1 (RFC 5802)
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/adhocd/adhocd/sessman/session"
)

// scramIterations is what unknown users appear to have, so that probing
// cannot tell them from real ones.
const scramIterations = 4096

// scram runs the server side of SCRAM-SHA-1 or SCRAM-SHA-256 (RFC 5802,
// RFC 7677) against stored keys: the server never sees the password.
func (c *conn) scram(ex *saslExchange, mech string, clientFirst []byte) (jid.JID, error) {
	hashName, newHash := "SHA-256", sha256.New
	if mech == "SCRAM-SHA-1" {
		hashName, newHash = "SHA-1", sha1.New
	}
	malformed := func(why string) error {
		return &saslFailure{condition: "malformed-request", text: "SCRAM: " + why}
	}
	if clientFirst == nil {
		var err error
		if clientFirst, err = ex.challenge(nil); err != nil {
			return jid.JID{}, err
		}
	}

	// client-first-message = gs2-header client-first-message-bare
	gs2Header, bare, ok := splitGS2(string(clientFirst))
	if !ok {
		return jid.JID{}, malformed("bad GS2 header")
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return jid.JID{}, malformed("expected n=user,r=nonce")
	}
	username, ok := unescapeSASLName(attrs[0][2:])
	if !ok {
		return jid.JID{}, malformed("bad username encoding")
	}
	user, err := c.userJID(username, gs2Authzid(gs2Header))
	if err != nil {
		return jid.JID{}, err
	}
	keys, err := c.srv.accounts.SCRAM(context.Background(), user, hashName)
	// A disabled account is told so only after a valid proof, when the store
	// still hands out its keys; otherwise at once.
	disabled := errors.Is(err, session.ErrDisabled)
	refusal := err
	switch {
	case errors.Is(err, session.ErrUnknownUser):
		keys = c.srv.fakeKeys(user, hashName, newHash)
	case disabled && len(keys.StoredKey) > 0:
	case err != nil:
		return jid.JID{}, accountFailure(err)
	}

	var nonce [18]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	fullNonce := attrs[1][2:] + base64.RawStdEncoding.EncodeToString(nonce[:])
	serverFirst := "r=" + fullNonce + ",s=" + base64.StdEncoding.EncodeToString(keys.Salt) + ",i=" + strconv.Itoa(keys.Iterations)

	clientFinal, err := ex.challenge([]byte(serverFirst))
	if err != nil {
		return jid.JID{}, err
	}
	// client-final-message = c=cbind,r=nonce[,extensions],p=proof
	final := string(clientFinal)
	i := strings.LastIndex(final, ",p=")
	if i < 0 {
		return jid.JID{}, malformed("missing proof")
	}
	withoutProof, proofB64 := final[:i], final[i+3:]
	fattrs := strings.Split(withoutProof, ",")
	if len(fattrs) < 2 || fattrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(gs2Header)) {
		return jid.JID{}, malformed("channel binding data does not match the GS2 header")
	}
	if fattrs[1] != "r="+fullNonce {
		return jid.JID{}, malformed("nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != newHash().Size() {
		return jid.JID{}, malformed("bad proof")
	}

	authMessage := []byte(bare + "," + serverFirst + "," + withoutProof)
	clientSignature := hmacSum(newHash, keys.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, clientSignature)
	storedKey := newHash()
	storedKey.Write(clientKey)
	if subtle.ConstantTimeCompare(storedKey.Sum(nil), keys.StoredKey) != 1 {
		return jid.JID{}, &saslFailure{condition: "not-authorized", user: user.String()}
	}
	if disabled {
		return jid.JID{}, accountFailure(refusal)
	}
	serverSignature := hmacSum(newHash, keys.ServerKey, authMessage)
	success := base64.StdEncoding.EncodeToString([]byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)))
	var w xmlWriter
	w.elem("success", success, "xmlns", nsSASL)
	return user, c.out.write(w.bytes())
}

// splitGS2 splits "gs2-cbind-flag,[a=authzid]," from the bare message. We do
// not offer channel binding: "n" and "y" are accepted, "p=" is not.
func splitGS2(msg string) (header, bare string, ok bool) {
	if !strings.HasPrefix(msg, "n,") && !strings.HasPrefix(msg, "y,") {
		return "", "", false
	}
	end := strings.IndexByte(msg[2:], ',')
	if end < 0 {
		return "", "", false
	}
	authz := msg[2 : 2+end]
	if authz != "" && !strings.HasPrefix(authz, "a=") {
		return "", "", false
	}
	return msg[:2+end+1], msg[2+end+1:], true
}

func gs2Authzid(header string) string {
	authz := header[2 : len(header)-1]
	if name, ok := unescapeSASLName(strings.TrimPrefix(authz, "a=")); ok {
		return name
	}
	return authz
}

// unescapeSASLName decodes RFC 5802 saslname: "=2C" is ',' and "=3D" is '='.
func unescapeSASLName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

func hmacSum(newHash func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(newHash, key)
	m.Write(msg)
	return m.Sum(nil)
}

// fakeKeys are what an unknown user appears to have: keyed by the server's
// FakeSaltKey, the user and the hash, they are the same on every attempt,
// node and restart, and differ between SCRAM-SHA-1 and SCRAM-SHA-256 as a
// real account's salts do. The exchange fails only at the proof, like a
// wrong password.
func (s *Server) fakeKeys(user jid.JID, hashName string, newHash func() hash.Hash) session.SCRAMKeys {
	seed := hmacSum(sha256.New, s.cfg.FakeSaltKey, []byte(hashName+"\x00"+user.String()))
	return session.SCRAMKeys{
		Salt:       seed[:fakeSaltLen],
		Iterations: scramIterations,
		StoredKey:  make([]byte, newHash().Size()), // no proof hashes to all zeros
		ServerKey:  seed,
	}
}

// fakeSaltLen is the length of the salts the store makes.
const fakeSaltLen = 16

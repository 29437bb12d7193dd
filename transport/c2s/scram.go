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
	if clientFirst == nil {
		var err error
		if clientFirst, err = ex.challenge(nil); err != nil {
			return jid.JID{}, err
		}
	}
	first, err := parseClientFirst(string(clientFirst))
	if err != nil {
		return jid.JID{}, err
	}
	user, err := c.userJID(first.username, first.authzid)
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
	fullNonce := first.nonce + base64.RawStdEncoding.EncodeToString(nonce[:])
	serverFirst := "r=" + fullNonce + ",s=" + base64.StdEncoding.EncodeToString(keys.Salt) + ",i=" + strconv.Itoa(keys.Iterations)

	clientFinal, err := ex.challenge([]byte(serverFirst))
	if err != nil {
		return jid.JID{}, err
	}
	withoutProof, proof, err := parseClientFinal(string(clientFinal), first.gs2Header, fullNonce, newHash().Size())
	if err != nil {
		return jid.JID{}, err
	}

	authMessage := []byte(first.bare + "," + serverFirst + "," + withoutProof)
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

// scramFirst is a parsed client-first-message.
type scramFirst struct {
	gs2Header string // "n,," or "y,a=authzid,", as sent
	bare      string // client-first-message-bare, part of the AuthMessage
	username  string // unescaped
	authzid   string // unescaped; "" if none
	nonce     string // the client's part of the nonce
}

// malformedSCRAM is the failure for a message that does not parse.
func malformedSCRAM(why string) error {
	return &saslFailure{condition: "malformed-request", text: "SCRAM: " + why}
}

// parseClientFirst parses a client-first-message (RFC 5802 §7):
// gs2-header client-first-message-bare.
func parseClientFirst(msg string) (scramFirst, error) {
	gs2Header, bare, ok := splitGS2(msg)
	if !ok {
		return scramFirst{}, malformedSCRAM("bad GS2 header")
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return scramFirst{}, malformedSCRAM("expected n=user,r=nonce")
	}
	username, ok := unescapeSASLName(attrs[0][2:])
	if !ok {
		return scramFirst{}, malformedSCRAM("bad username encoding")
	}
	return scramFirst{gs2Header: gs2Header, bare: bare, username: username,
		authzid: gs2Authzid(gs2Header), nonce: attrs[1][2:]}, nil
}

// parseClientFinal parses a client-final-message (RFC 5802 §7),
// c=cbind,r=nonce[,extensions],p=proof, and checks it against the
// exchange: the channel binding data must repeat gs2Header, the nonce must
// be fullNonce and the proof proofLen bytes. It returns the message
// without its proof (part of the AuthMessage) and the decoded proof.
func parseClientFinal(msg, gs2Header, fullNonce string, proofLen int) (withoutProof string, proof []byte, err error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", nil, malformedSCRAM("missing proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || attrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(gs2Header)) {
		return "", nil, malformedSCRAM("channel binding data does not match the GS2 header")
	}
	if attrs[1] != "r="+fullNonce {
		return "", nil, malformedSCRAM("nonce mismatch")
	}
	proof, err = base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != proofLen {
		return "", nil, malformedSCRAM("bad proof")
	}
	return withoutProof, proof, nil
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

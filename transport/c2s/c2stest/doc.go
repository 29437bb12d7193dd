// Package c2stest drives third-party XMPP clients against a c2s listener in
// tests, as net/http/httptest serves HTTP: a normal package that only tests
// import.
//
// It runs testdata/clients/slixmpp_client.py (slixmpp, Debian
// python3-slixmpp) and speaks its line protocol over stdin and stdout.
package c2stest

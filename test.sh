#!/usr/bin/env bash
# Runs every test of adhocd, installing what the tests need when it is missing:
# the third-party XMPP clients python3-slixmpp and go-sendxmpp, chromium for the
# cross-site request forgery test and curl for the README's examples (Debian packages).
set -euo pipefail
cd "$(dirname "$0")"

need=()
dpkg -s python3-slixmpp >/dev/null 2>&1 || need+=(python3-slixmpp)
command -v go-sendxmpp >/dev/null 2>&1 || need+=(go-sendxmpp)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Pusher's Node.js server SDK drives the Pusher-compatible endpoint in the tests.
[ -d testdata/clients/node_modules/pusher ] || npm ci --prefix testdata/clients --no-audit --no-fund --loglevel=error

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt -l lists unformatted files:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 8m ./...

# A short run of each decoder fuzzer (the seed corpus already ran as tests above).
# The budget is a count of executions, not a duration: Go 1.26's fuzz coordinator
# can fail a clean run with "context deadline exceeded" when a -fuzztime duration
# ends while a worker is mid-call (golang/go#75804, fixed in Go 1.27).
for target in FuzzDecodeTigaseXML FuzzDecodeTigaseJSON FuzzDecodeNative; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime 150000x ./codec
done
# The c2s stream reader and the SASL/SCRAM message parsers, likewise.
for target in FuzzStreamReader FuzzSCRAMClientMessages; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime 20000x ./transport/c2s
done

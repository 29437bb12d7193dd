#!/usr/bin/env python3
"""A scripted slixmpp client for adhocd's end-to-end tests.

It logs in with one SASL mechanism (SCRAM-SHA-256 by default), binds the
resource of the JID it is given, and speaks a line protocol:

stdout, one event per line:
    AUTH <mechanism>                 SASL succeeded with <mechanism>
    AUTH_FAILED <condition>          SASL failed
    READY <full jid>                 the session started (resource bound)
    MESSAGE <from> <body>            a message arrived
    STREAM_ERROR <condition> <text>  the server ended the stream
    DISCONNECTED                     the connection is gone; the script exits

stdin, one command per line:
    SEND <to> <body>                 send a chat message
    QUIT                             close the stream and exit

The password is read from the environment variable XMPP_PASSWORD.
Needs python3-slixmpp (Debian) or `pip install slixmpp`.
"""

import argparse
import asyncio
import logging
import os
import re
import ssl
import sys
from pathlib import Path

import slixmpp


class RedactSASL(logging.Filter):
    """Hides SASL payloads in the --debug stream log."""

    PAYLOAD = re.compile(r"(<(auth|challenge|response|success)\b[^>]*>)[^<]+(</)")

    def filter(self, record):
        record.msg = self.PAYLOAD.sub(r"\1[REDACTED]\3", record.getMessage())
        record.args = None
        return True


def emit(*words):
    print(" ".join(str(w) for w in words), flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, mech):
        super().__init__(jid, password, sasl_mech=mech)
        # Only TLS-protected SASL: never fall back to a clear-text stream.
        self["feature_mechanisms"].unencrypted_scram = False
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("failed_all_auth", self.on_failed_all_auth)
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.done = asyncio.get_event_loop().create_future()

    def finish(self, code):
        if not self.done.done():
            self.done.set_result(code)

    def on_auth_success(self, _stanza):
        emit("AUTH", self["feature_mechanisms"].mech.name)

    def on_failed_auth(self, stanza):
        emit("AUTH_FAILED", stanza["condition"] or "unknown")

    def on_failed_all_auth(self, _event):
        self.disconnect()

    async def on_session_start(self, _event):
        # What a typical client does first: fetch the roster, then go online.
        await self.get_roster()
        self.send_presence()
        emit("READY", self.boundjid.full)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            emit("MESSAGE", msg["from"].full, msg["body"])

    def on_stream_error(self, error):
        emit("STREAM_ERROR", error["condition"], error["text"])

    def on_connection_failed(self, reason):
        emit("CONNECTION_FAILED", reason)
        self.finish(1)

    def on_disconnected(self, _reason):
        emit("DISCONNECTED")
        self.finish(0)

    def on_stdin_line(self, line):
        line = line.rstrip("\r\n")
        if line.startswith("SEND "):
            parts = line.split(" ", 2)
            if len(parts) == 3:
                self.send_message(mto=parts[1], mbody=parts[2], mtype="chat")
        elif line == "QUIT":
            self.disconnect()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jid", required=True, help="full JID, e.g. carol@localhost/slix")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--direct-tls", action="store_true", help="XEP-0368 direct TLS instead of STARTTLS")
    p.add_argument("--cafile", help="PEM certificate to trust; without it verification is off (loopback tests only)")
    p.add_argument("--mech", default="SCRAM-SHA-256", help="the only SASL mechanism to use")
    p.add_argument("--debug", action="store_true", help="log the XML stream on stderr")
    args = p.parse_args()

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="slixmpp %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSASL())
    password = os.environ.get("XMPP_PASSWORD")
    if password is None:
        p.error("XMPP_PASSWORD is not set")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    xmpp = Client(args.jid, password, args.mech)
    if args.cafile:
        xmpp.ca_certs = Path(args.cafile)
    else:
        xmpp.ssl_context.check_hostname = False
        xmpp.ssl_context.verify_mode = ssl.CERT_NONE

    def read_stdin():
        line = sys.stdin.readline()
        if line == "":
            loop.remove_reader(sys.stdin)
            return
        xmpp.on_stdin_line(line)

    loop.add_reader(sys.stdin, read_stdin)
    xmpp.connect(address=(args.host, args.port), use_ssl=args.direct_tls, force_starttls=not args.direct_tls)
    code = loop.run_until_complete(xmpp.done)
    sys.exit(code)


if __name__ == "__main__":
    main()

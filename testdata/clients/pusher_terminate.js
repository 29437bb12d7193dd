#!/usr/bin/env node
// Calls Pusher's terminate_connections on an adhocd server through Pusher's
// official server SDK for Node.js (the npm package "pusher"), for adhocd's
// end-to-end tests.
//
// Usage:
//   node pusher_terminate.js --app-id ID --key KEY --host HOST --port PORT --user USER_ID
// Each option may come from the environment instead: PUSHER_APP_ID,
// PUSHER_KEY, PUSHER_HOST, PUSHER_PORT, PUSHER_USER_ID. The secret is read
// from PUSHER_SECRET only (or --secret), so that it need not show in a
// process listing. TLS is off: the tests talk to loopback.
//
// It prints one JSON line on stdout, {"status": <HTTP status>, "body": "<response body>"},
// for every HTTP answer, 2xx or not, and exits 0. When no answer came (the
// connection failed, the SDK refused the arguments) it prints
// {"error": "<message>"} and exits 1. Install the SDK with
// `npm ci --prefix testdata/clients`.
"use strict"

const Pusher = require("pusher")

function options(argv, env) {
  const names = {
    "--app-id": "PUSHER_APP_ID",
    "--key": "PUSHER_KEY",
    "--secret": "PUSHER_SECRET",
    "--host": "PUSHER_HOST",
    "--port": "PUSHER_PORT",
    "--user": "PUSHER_USER_ID",
  }
  const opts = {}
  for (const [flag, variable] of Object.entries(names)) {
    if (env[variable] !== undefined) {
      opts[flag] = env[variable]
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (!(flag in names)) {
      throw new Error("unknown argument " + JSON.stringify(flag))
    }
    if (i + 1 >= argv.length) {
      throw new Error(flag + " needs a value")
    }
    opts[flag] = argv[++i]
  }
  for (const flag of Object.keys(names)) {
    if (opts[flag] === undefined) {
      throw new Error("missing " + flag + " (or " + names[flag] + ")")
    }
  }
  return opts
}

function print(value) {
  process.stdout.write(JSON.stringify(value) + "\n")
}

async function main() {
  const opts = options(process.argv.slice(2), process.env)
  const pusher = new Pusher({
    appId: opts["--app-id"],
    key: opts["--key"],
    secret: opts["--secret"],
    host: opts["--host"],
    port: Number(opts["--port"]),
    useTLS: false,
    timeout: 15000,
  })
  let res
  try {
    res = await pusher.terminateUserConnections(opts["--user"])
  } catch (err) {
    // The SDK throws a RequestError with .status and .body for any answer
    // of 400 or more, and one without .status when no answer came.
    if (err && typeof err.status === "number") {
      print({ status: err.status, body: err.body === undefined ? "" : String(err.body) })
      return 0
    }
    const cause = err && err.error ? ": " + String(err.error) : ""
    print({ error: String(err && err.message ? err.message : err) + cause })
    return 1
  }
  print({ status: res.status, body: await res.text() })
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    print({ error: String(err && err.message ? err.message : err) })
    process.exitCode = 1
  }
)

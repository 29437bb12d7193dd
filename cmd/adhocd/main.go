package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: adhocd <command> [flags]

Commands:
  serve   run the XMPP server and the HTTP gateway
  user    manage accounts offline: add, del, passwd, list, disable, enable
  apikey  manage API keys for scripts: create, list, revoke
  audit   print the audit of admin actions

Run 'adhocd <command> --help' for the flags of a command.
Every flag of serve can also be set with an ADHOCD_* environment variable
(--c2s-tls is ADHOCD_C2S_TLS) or in the YAML file that --config FILE or
ADHOCD_CONFIG names, whose keys are the flag names (c2s-tls: ":5223").
The offline commands share --data, --domain and --config with serve, and
must name the same data directory as the server (--data or ADHOCD_DATA).
One file serves every command: each ignores serve's keys it does not take.
` + precedence + "\n"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "adhocd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "user":
		return runUser(ctx, args[1:], stdin, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, args[1:], stdin, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"lode/internal/auth"
	"lode/internal/server"
)

// newTokenCmd builds `lode token create`. --database and --resource take
// two and three values (Datasette's syntax), which pflag cannot express, so
// create parses its own arguments.
func newTokenCmd() *cobra.Command {
	token := &cobra.Command{
		Use:   "token",
		Short: "Create signed API tokens for the write API",
	}
	create := &cobra.Command{
		Use:   "create --actor ID [--expires-after SECONDS] [--all ACTION] [--database DB ACTION] [--resource DB TABLE ACTION] [--secret S] [--config lode.yaml]",
		Short: "Print a signed bearer token for an actor, optionally restricted to some actions",
		Long: `Print a signed bearer token for an actor. Send it as "Authorization: Bearer TOKEN".

The signing secret is --secret, else $LODE_SECRET, else the file .lode-secret next to
--config (without one: in your config directory, e.g. ~/.config/lode/), generated with
0600 permissions on first use. lode serve must use the same secret.

Without --all/--database/--resource the token may do whatever its actor may do. With them,
the token may only do the named actions: --all on everything, --database on one database,
--resource on one table or canned query. Actions: insert-row (ir), update-row (ur),
delete-row (dr), create-table (ct), alter-table (at), drop-table (dt), view-instance (vi),
view-database (vd), view-table (vt), view-query (vq), execute-sql (es).`,
		Example: `  lode token create --actor alice
  lode token create --actor root --expires-after 3600
  lode token create --actor bot --resource fixtures logs insert-row --all view-instance`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, secretFlag, configPath, help, err := parseTokenArgs(args)
			if help {
				return cmd.Help()
			}
			if err != nil {
				return err
			}
			secret, err := auth.LoadSecret(secretFlag, configPath)
			if err != nil {
				return err
			}
			tok, err := auth.CreateToken(secret, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	// The arguments are parsed by parseTokenArgs (--database and
	// --resource take several values); these flags only document them in
	// --help, and TestTokenCreateHelp keeps the two lists the same.
	f := create.Flags()
	for _, fl := range []struct{ name, short, value, usage string }{
		{"actor", "", "ID", "the actor id the token signs in as (required), e.g. root"},
		{"expires-after", "", "SECONDS", "the token expires this many seconds from now (default: never)"},
		{"all", "", "ACTION", "the token may do only ACTION, everywhere (repeatable)"},
		{"database", "", "DB ACTION", "the token may do ACTION in database DB (two values; repeatable)"},
		{"resource", "", "DB TABLE ACTION", "the token may do ACTION on table or canned query TABLE of DB (three values; repeatable)"},
		{"secret", "", "S", "signing secret (default $LODE_SECRET, else .lode-secret next to --config or in ~/.config/lode)"},
		{"config", "c", "FILE", "lode.yaml: its folder holds .lode-secret"},
	} {
		f.VarP(helpOnly(fl.value), fl.name, fl.short, fl.usage)
	}
	f.BoolP("help", "h", false, "help for create")
	token.AddCommand(create)
	return token
}

// helpOnly is a flag that is listed in --help but never parsed by pflag
// (its command parses its own arguments); the string is the value's name
// in the listing.
type helpOnly string

func (h helpOnly) String() string   { return "" }
func (h helpOnly) Set(string) error { return errors.New("parsed by the command") }
func (h helpOnly) Type() string     { return string(h) }

func parseTokenArgs(args []string) (o auth.TokenOptions, secret, configPath string, help bool, err error) {
	r := &auth.Restrictions{}
	restricted := false
	need := func(i, n int, flag string) error {
		if i+n >= len(args) {
			return fmt.Errorf("%s needs %d value(s); see lode token create --help", flag, n)
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		one := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if err := need(i, 1, name); err != nil {
				return "", err
			}
			i++
			return args[i], nil
		}
		switch name {
		case "-h", "--help":
			return o, "", "", true, nil
		case "--actor":
			if o.Actor, err = one(); err != nil {
				return
			}
		case "--secret":
			if secret, err = one(); err != nil {
				return
			}
		case "--config", "-c":
			if configPath, err = one(); err != nil {
				return
			}
		case "--expires-after":
			var s string
			if s, err = one(); err != nil {
				return
			}
			n, perr := strconv.Atoi(s)
			if perr != nil || n < 0 {
				err = fmt.Errorf("--expires-after %q: want a number of seconds", s)
				return
			}
			o.ExpiresAfter = time.Duration(n) * time.Second
		case "--all":
			var s string
			if s, err = one(); err != nil {
				return
			}
			r.All = append(r.All, s)
			restricted = true
		case "--database":
			if err = need(i, 2, a); err != nil {
				return
			}
			if r.Databases == nil {
				r.Databases = map[string][]string{}
			}
			r.Databases[args[i+1]] = append(r.Databases[args[i+1]], args[i+2])
			i += 2
			restricted = true
		case "--resource":
			if err = need(i, 3, a); err != nil {
				return
			}
			if r.Resources == nil {
				r.Resources = map[string]map[string][]string{}
			}
			db, table := args[i+1], args[i+2]
			if r.Resources[db] == nil {
				r.Resources[db] = map[string][]string{}
			}
			r.Resources[db][table] = append(r.Resources[db][table], args[i+3])
			i += 3
			restricted = true
		default:
			err = fmt.Errorf("unknown argument %q; see lode token create --help", a)
			return
		}
	}
	if o.Actor == "" {
		err = fmt.Errorf("missing --actor ID: the actor id the token signs in as, e.g. --actor root")
		return
	}
	if restricted {
		o.Restrict = r
	}
	return
}

// addWriteFlags adds lode serve's write-path flags (the SQLite settings
// flags are serve.go's).
func addWriteFlags(f *pflag.FlagSet) {
	f.String("writer", "single", "write path: single (one writer per database, group commit) or pool (any connection writes; for comparisons)")
	f.Bool("root", false, "grant the actor \"root\" every permission and print a one-time sign-in URL")
	f.String("secret", "", "secret that signs API tokens (default $LODE_SECRET, else .lode-secret next to --config or in ~/.config/lode, generated)")
}

// writeOptions reads the write-path flags.
func writeOptions(f *pflag.FlagSet) server.WriteOptions {
	var o server.WriteOptions
	o.Writer, _ = f.GetString("writer")
	o.Root, _ = f.GetBool("root")
	o.Secret, _ = f.GetString("secret")
	o.ConfigPath, _ = f.GetString("config")
	return o
}

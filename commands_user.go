package main

// hossagent user: operator accounts from a shell, for the operator who lost
// the printed password or wants a second account without the control room.
// It opens $DATA_DIR's database beside a running app (like check
// --repair-totals, it takes no DATA_DIR lock: each change is one short
// transaction), and every change is in the audit log as actor "cli".

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/hossagent/hossagent/app"
	"github.com/hossagent/hossagent/app/config"
	"github.com/hossagent/hossagent/db"
)

const userUsage = `usage: hossagent user add --email E --role admin|viewer [--password P]
       hossagent user reset --email E [--password P]
       hossagent user remove --email E
       hossagent user list
Without --password a strong password is generated and printed once.`

func userCmd(ctx context.Context, args []string, getenv func(string) string, random io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, userUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the account's e-mail")
	role := fs.String("role", "", "admin or viewer")
	password := fs.String("password", "", "the password (default: generate one and print it once)")
	dbPath := fs.String("db", "", "database: a SQLite file or a postgres:// URL (default: DATABASE_URL, else $DATA_DIR/"+db.FileName+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "user %s: unexpected argument %q\n%s\n", sub, fs.Arg(0), userUsage)
		return 2
	}
	switch sub {
	case "add", "reset", "remove":
		if *email == "" {
			fmt.Fprintf(stderr, "user %s: --email is required\n", sub)
			return 2
		}
	case "list":
	default:
		fmt.Fprintf(stderr, "user: unknown command %q\n%s\n", sub, userUsage)
		return 2
	}
	if sub == "add" && *role == "" {
		fmt.Fprintln(stderr, "user add: --role is required (admin or viewer)")
		return 2
	}
	if sub != "add" && *role != "" {
		fmt.Fprintf(stderr, "user %s: --role applies to add only\n", sub)
		return 2
	}
	if (sub == "remove" || sub == "list") && *password != "" {
		fmt.Fprintf(stderr, "user %s: --password does not apply\n", sub)
		return 2
	}
	if *dbPath == "" {
		cfg, _, err := config.Load(getenv)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		*dbPath = databaseOf(cfg)
	}
	store, err := openStore(ctx, *dbPath, storeWritable)
	if err != nil {
		fmt.Fprintf(stderr, "user %s: %v (start the app once to create the database)\n", sub, err)
		return 2
	}
	defer store.Close()

	generated := false
	if (sub == "add" || sub == "reset") && *password == "" {
		p, err := app.GeneratePassword(random)
		if err != nil {
			fmt.Fprintf(stderr, "user %s: %v\n", sub, err)
			return 1
		}
		*password, generated = p, true
	}

	var u *db.User
	switch sub {
	case "list":
		return listUsers(ctx, store, stdout, stderr)
	case "add":
		u, err = store.CreateUser(ctx, db.NewUser{Email: *email, Password: *password, Role: *role})
		if db.IsUniqueViolation(err) {
			err = fmt.Errorf("an account with e-mail %s exists already (use user reset to give it a new password)", *email)
		}
	case "reset":
		u, err = store.SetPassword(ctx, *email, *password, 0)
	case "remove":
		u, err = store.RemoveUser(ctx, *email)
	}
	switch {
	case errors.Is(err, db.ErrNotFound):
		fmt.Fprintf(stderr, "user %s: no account has e-mail %s (user list shows them)\n", sub, *email)
		return 1
	case errors.Is(err, db.ErrInvalidUser), errors.Is(err, db.ErrLastAdmin):
		fmt.Fprintf(stderr, "user %s: %v\n", sub, err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "user %s: %v\n", sub, err)
		return 1
	}
	detail := map[string]string{"add": "added as " + u.Role, "reset": "password reset, sessions ended", "remove": "removed"}[sub]
	if err := store.RecordAudit(ctx, db.AuditEntry{Actor: "cli", Action: "user." + sub, Target: "user:" + u.Email, Detail: detail}); err != nil {
		fmt.Fprintf(stderr, "user %s: done, but the audit entry was not written: %v\n", sub, err)
	}
	switch sub {
	case "add":
		fmt.Fprintf(stdout, "added %s (%s)\n", u.Email, u.Role)
	case "reset":
		fmt.Fprintf(stdout, "new password set for %s; its sessions were signed out\n", u.Email)
	case "remove":
		fmt.Fprintf(stdout, "removed %s and signed out its sessions\n", u.Email)
	}
	if generated {
		fmt.Fprintf(stdout, "password: %s\nThis password is shown ONCE; store it now. Sign in at /login.\n", *password)
	}
	return 0
}

func listUsers(ctx context.Context, store *db.DB, stdout, stderr io.Writer) int {
	users, err := store.ListUsers(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "user list:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "E-MAIL\tROLE\tCREATED\tSESSIONS")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", u.Email, u.Role, u.CreatedAt.Format("2006-01-02 15:04"), u.Sessions)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

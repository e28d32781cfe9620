package dovecottest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Texts Dovecot answers for the default users (see the package doc).
const (
	// DisabledReason is the passwd-file reason of "disabled": one word,
	// because passwd-file splits extra fields on spaces.
	DisabledReason = "Account_disabled_by_test_admin"
	// Disabled2Reason is the reason of "disabled2", given by the
	// checkpassword program, which may contain spaces.
	Disabled2Reason = "Your account is disabled: contact support@example.invalid"
	// UTF8Password is the password of user "utf8": 8-bit bytes must reach
	// Dovecot unchanged.
	UTF8Password = "pässwörd"
)

// user is one passwd-file line.
type user struct {
	name     string
	password string
	extra    []string
}

// defaultUsers go into every server's passwd-file. The checkpassword users
// (tempfail*, disabled2) and "expired" are not in it: other passdbs answer
// for them.
func defaultUsers() []user {
	return []user{
		{name: "alice", password: "alicepass"},
		{name: "bob", password: "bobpass"},
		{name: "carol@example.test", password: "carolpass"},
		{name: "utf8", password: UTF8Password},
		{name: "nologin", password: "nologinpass", extra: []string{"nologin=y"}},
		{name: "disabled", password: "disabledpass", extra: []string{"nologin=y", "reason=" + DisabledReason}},
	}
}

// checkpasswordScript implements Dovecot's checkpassword protocol
// (https://doc.dovecot.org/2.3/configuration_manual/authentication/checkpassword/):
// fd 3 carries "user\0password\0timestamp\0"; exit 1 rejects, 111 is a
// temporary failure, and exec'ing the reply program given as arguments
// accepts, with the extra fields named in $EXTRA taken from the environment.
// The password is never read into a variable.
const checkpasswordScript = `#!/bin/bash
# Written by imapwhy's internal/dovecottest.
IFS= read -r -d '' user <&3 || exit 2
case "$user" in
tempfail*)
	exit 111 ;;
disabled2)
	export nologin=y
	export reason='` + Disabled2Reason + `'
	export EXTRA='nologin reason'
	exec "$@" ;;
*)
	exit 1 ;;
esac
`

// expiredLua is the Lua passdb for the user "expired": every login fails
// as "password expired", which Dovecot answers with NO [EXPIRED].
const expiredLua = `-- Written by imapwhy's internal/dovecottest.
function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_PASS_EXPIRED, "Password expired"
end
`

// AddUser adds a passwd-file user, or replaces one of the same name.
// extra are passwd-file extra fields such as "nologin=y" or
// "reason=One_word" (no spaces, colons or control characters; Dovecot
// %-expands them). It returns when the running Dovecot will see the change,
// which takes up to a second (see changePasswdLocked).
//
// A failure is reported on the test given to Start and also returned.
func (s *Server) AddUser(name, password string, extra ...string) error {
	err := s.addUser(user{name: name, password: password, extra: extra})
	return s.report("AddUser", err)
}

// SetPassword changes the password of a passwd-file user, keeping its extra
// fields. Like AddUser it takes up to a second. A failure is reported on the test given to Start and also returned.
func (s *Server) SetPassword(name, password string) error {
	err := s.setPassword(name, password)
	return s.report("SetPassword", err)
}

// AddUsers adds passwd-file users that share one password, in one change
// of the file (one wait, as AddUser).
func (s *Server) AddUsers(password string, names ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		u := user{name: n, password: password}
		if err := checkUser(u); err != nil {
			return s.report("AddUsers", err)
		}
		s.users = slices.DeleteFunc(s.users, func(o user) bool { return o.name == n })
		s.users = append(s.users, u)
	}
	return s.report("AddUsers", s.changePasswdLocked())
}

func (s *Server) addUser(u user) error {
	if err := checkUser(u); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	replaced := false
	for i := range s.users {
		if s.users[i].name == u.name {
			s.users[i] = u
			replaced = true
		}
	}
	if !replaced {
		s.users = append(s.users, u)
	}
	return s.changePasswdLocked()
}

func (s *Server) setPassword(name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.users {
		if s.users[i].name != name {
			continue
		}
		u := s.users[i]
		u.password = password
		if err := checkUser(u); err != nil {
			return err
		}
		s.users[i] = u
		return s.changePasswdLocked()
	}
	return fmt.Errorf("no passwd-file user %q", name)
}

// checkUser refuses what cannot be written to a passwd-file line unchanged.
// Errors never contain the password.
func checkUser(u user) error {
	if u.name == "" || strings.HasPrefix(u.name, "#") || strings.ContainsFunc(u.name, func(r rune) bool {
		return r == ':' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) || u.name == "." || u.name == ".." {
		return fmt.Errorf("user name %q cannot be a passwd-file user", u.name)
	}
	if strings.ContainsFunc(u.password, func(r rune) bool { return r == ':' || unicode.IsControl(r) }) {
		return fmt.Errorf("password of %q contains ':' or a control character", u.name)
	}
	for _, f := range u.extra {
		if f == "" || strings.ContainsFunc(f, func(r rune) bool {
			return r == ':' || unicode.IsSpace(r) || unicode.IsControl(r)
		}) {
			return fmt.Errorf("extra field %q of %q: passwd-file fields are one word without ':'", f, u.name)
		}
	}
	return nil
}

// changePasswdLocked writes the passwd-file and waits until the running
// Dovecot is sure to see it. Dovecot checks the file at most once per
// second of its clock: a lookup earlier in the second of the write may have
// been the check, so the change shows from the next second on.
func (s *Server) changePasswdLocked() error {
	if err := s.writePasswdLocked(); err != nil {
		return err
	}
	next := time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)
	time.Sleep(time.Until(next))
	return nil
}

// writePasswdLocked replaces the passwd-file atomically. Dovecot re-reads
// the file when its mtime (whole seconds) or size changes, so the mtime is
// moved forward at least one second on every write: a same-length password
// change within one second would otherwise go unnoticed.
func (s *Server) writePasswdLocked() error {
	var b strings.Builder
	for _, u := range s.users {
		// user:password:uid:gid:gecos:home:shell:extra_fields
		fmt.Fprintf(&b, "%s:{PLAIN}%s::::::%s\n", u.name, u.password, strings.Join(u.extra, " "))
	}
	stamp := time.Now().Truncate(time.Second)
	if !stamp.After(s.passwdStamp) {
		stamp = s.passwdStamp.Add(time.Second)
	}
	if err := s.writeSecret(s.passwdFile(), []byte(b.String()), 0o640, stamp); err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	s.passwdStamp = stamp
	return nil
}

// writeSecret writes data to path through a temporary file and a rename,
// readable only by its owner and the group Dovecot's auth process runs in.
func (s *Server) writeSecret(path string, data []byte, mode os.FileMode, mtime time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	if s.acct.root {
		if err := os.Chown(tmp.Name(), 0, s.acct.internalGID); err != nil {
			return err
		}
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), path)
}

// Deliver puts msg into user's INBOX the way a local delivery agent does:
// written to Maildir/tmp and renamed into Maildir/new, where Dovecot (also a
// session in IDLE) picks it up. Use CRLF line ends: Dovecot serves a message
// stored with bare LF with CRLF, so its size and bytes would differ.
//
// A failure is reported on the test given to Start and also returned.
func (s *Server) Deliver(user string, msg []byte) error {
	return s.report("Deliver", s.deliver(user, msg))
}

func (s *Server) deliver(name string, msg []byte) error {
	if err := checkUser(user{name: name}); err != nil {
		return err
	}
	home := filepath.Join(s.mailDir(), name)
	maildir := filepath.Join(home, "Maildir")
	for _, d := range []string{home, maildir, filepath.Join(maildir, "tmp"), filepath.Join(maildir, "new"), filepath.Join(maildir, "cur")} {
		if err := s.mkdirMail(d); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.deliveries++
	n := s.deliveries
	s.mu.Unlock()
	now := time.Now()
	file := fmt.Sprintf("%d.M%dP%dQ%d.dovecottest,S=%d", now.Unix(), now.Nanosecond()/1000, os.Getpid(), n, len(msg))
	tmp := filepath.Join(maildir, "tmp", file)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return fmt.Errorf("deliver to %s: %w", name, err)
	}
	if err := os.Chown(tmp, s.acct.mailUID, s.acct.mailGID); err != nil {
		return fmt.Errorf("deliver to %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", file)); err != nil {
		return fmt.Errorf("deliver to %s: %w", name, err)
	}
	return nil
}

// mkdirMail creates a directory of the mail store owned by the mail user,
// as Dovecot itself would.
func (s *Server) mkdirMail(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Chown(dir, s.acct.mailUID, s.acct.mailGID)
}

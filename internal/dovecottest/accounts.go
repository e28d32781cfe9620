package dovecottest

import (
	"fmt"
	"os"
	osuser "os/user"
	"strconv"
)

// accounts are the system users Dovecot's processes run as.
type accounts struct {
	root          bool
	loginUser     string // default_login_user: imap-login
	internalUser  string // default_internal_user: auth, anvil, stats
	internalGroup string // default_internal_group
	internalGID   int    // its id: may read the passwd-file
	mailUID       int    // userdb uid/gid: the imap processes and the Maildirs
	mailGID       int
}

// lookupAccounts picks the users Dovecot runs as. As root (CI, this machine)
// it uses the ones Debian's dovecot-core creates, dovenull and dovecot, and
// nobody:nogroup for mail. Otherwise everything runs as the current user,
// without chroot.
func lookupAccounts() (accounts, error) {
	if os.Geteuid() != 0 {
		cur, err := osuser.Current()
		if err != nil {
			return accounts{}, fmt.Errorf("current user: %w", err)
		}
		grp, err := osuser.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			return accounts{}, fmt.Errorf("current group: %w", err)
		}
		return accounts{
			loginUser:     cur.Username,
			internalUser:  cur.Username,
			internalGroup: grp.Name,
			internalGID:   os.Getgid(),
			mailUID:       os.Getuid(),
			mailGID:       os.Getgid(),
		}, nil
	}
	a := accounts{root: true, loginUser: "dovenull", internalUser: "dovecot", internalGroup: "dovecot"}
	for _, name := range []string{a.loginUser, a.internalUser} {
		if _, err := osuser.Lookup(name); err != nil {
			return accounts{}, fmt.Errorf("system user %s (created by the dovecot-core package) is missing: %w", name, err)
		}
	}
	grp, err := osuser.LookupGroup(a.internalGroup)
	if err != nil {
		return accounts{}, fmt.Errorf("group %s (created by the dovecot-core package) is missing: %w", a.internalGroup, err)
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return accounts{}, fmt.Errorf("gid of %s: %w", a.internalGroup, err)
	}
	a.internalGID = gid
	// nobody:nogroup exist on every Debian system (base-passwd); the
	// numbers are its fixed ones should the lookup fail.
	a.mailUID, a.mailGID = 65534, 65534
	if u, err := osuser.Lookup("nobody"); err == nil {
		if n, err := strconv.Atoi(u.Uid); err == nil {
			a.mailUID = n
		}
		if n, err := strconv.Atoi(u.Gid); err == nil {
			a.mailGID = n
		}
	}
	return a, nil
}

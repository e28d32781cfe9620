package dovecottest

import (
	"bytes"
	"strings"
	"text/template"
)

// confData fills confTemplate. Every path is absolute.
type confData struct {
	Instance        string
	RunDir          string // base_dir: short, Unix socket paths live here
	StateDir        string
	LogPath         string
	CertPath        string
	KeyPath         string
	PasswdFile      string
	Checkpassword   string
	MailDir         string
	LoginUser       string // default_login_user
	InternalUser    string // default_internal_user
	InternalGroup   string // default_internal_group: owns the internal sockets
	MailUID         int
	MailGID         int
	Chroot          bool // login processes chroot (only possible as root)
	IMAPPort        int
	IMAPSPort       int
	HAProxyPort     int // 0: no listener expecting a PROXY header
	ExpiredLua      string
	MaxUserIP       int
	TrustedNetworks string
	Zlib            bool
	Sessions        *sessions // nil: Dovecot's defaults
	OAuth2Conf      string    // the oauth2 passdb's settings file; empty: no OAuth
}

// sessionsPerProcess is the client_limit of the imap service when
// Options.MaxSessions is set: an imap process serves this many sessions
// (Dovecot's default is one process per session, which on a small machine
// runs out of memory and processes long before thousands of sessions).
const sessionsPerProcess = 50

// sessions are the service limits for Options.MaxSessions.
type sessions struct {
	IMAPProcesses int // service imap process_limit
	PerProcess    int // service imap client_limit
	ClientLimit   int // default_client_limit: anvil, auth, log... and the login processes
}

// sessionLimits returns the limits for max sessions at once, nil for 0.
func sessionLimits(max int) *sessions {
	if max == 0 {
		return nil
	}
	return &sessions{
		IMAPProcesses: max/sessionsPerProcess + 2,
		PerProcess:    sessionsPerProcess,
		// Every session keeps connections to anvil and the stats
		// service; logins go through auth. Leave room for the rest.
		ClientLimit: max + 1000,
	}
}

// confTemplate is a whole, self-contained dovecot.conf: nothing from
// /etc/dovecot is included, so the machine's own Dovecot setup (if any)
// neither leaks in nor is touched.
var confTemplate = template.Must(template.New("dovecot.conf").Parse(`# Written by imapwhy's internal/dovecottest for one test; removed afterwards.
instance_name = {{.Instance}}
base_dir = {{.RunDir}}
state_dir = {{.StateDir}}
log_path = {{.LogPath}}
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes

default_login_user = {{.LoginUser}}
default_internal_user = {{.InternalUser}}
default_internal_group = {{.InternalGroup}}
first_valid_uid = {{.MailUID}}
first_valid_gid = {{.MailGID}}

ssl = yes
ssl_cert = <{{.CertPath}}
ssl_key = <{{.KeyPath}}
disable_plaintext_auth = yes
{{- if .TrustedNetworks}}
login_trusted_networks = {{.TrustedNetworks}}
{{- end}}
{{- if .HAProxyPort}}
haproxy_trusted_networks = 127.0.0.0/8
{{- end}}

auth_mechanisms = plain login{{if .OAuth2Conf}} xoauth2 oauthbearer{{end}}
auth_failure_delay = 0
auth_verbose = yes
auth_cache_size = 0

{{- if .OAuth2Conf}}
# OAuth tokens are checked by the provider alone: no other passdb may
# take a token for a password.
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {{.OAuth2Conf}}
  result_failure = return-fail
  result_internalfail = return-fail
}
{{- end}}
# passwd-file is re-read when its mtime or size changed, checked at most once
# a second (AddUser and SetPassword wait for that).
passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.PasswdFile}}
}
# Reasons with spaces and temporary failures need a program: passwd-file
# splits extra fields on spaces.
passdb {
  driver = checkpassword
  args = {{.Checkpassword}}
  username_filter = tempfail* disabled2
}
# Dovecot 2.3 answers NO [EXPIRED] only when a passdb reports an expired
# password: PAM for real accounts, or Lua (package dovecot-auth-lua).
passdb {
  driver = lua
  args = file={{.ExpiredLua}} blocking=yes
  username_filter = expired
}
userdb {
  driver = static
  args = uid={{.MailUID}} gid={{.MailGID}} home={{.MailDir}}/%u
}

mail_location = maildir:~/Maildir
{{- if .Zlib}}
mail_plugins = $mail_plugins zlib
{{- end}}
protocol imap {
  mail_max_userip_connections = {{.MaxUserIP}}
{{- if .Zlib}}
  mail_plugins = $mail_plugins imap_zlib
{{- end}}
}

{{- with .Sessions}}
default_client_limit = {{.ClientLimit}}
service imap {
  process_limit = {{.IMAPProcesses}}
  client_limit = {{.PerProcess}}
  # A process serving several sessions must not exit after the first.
  service_count = 0
}
{{- end}}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1, 127.0.0.2
    port = {{.IMAPPort}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.IMAPSPort}}
    ssl = yes
  }
{{- if .HAProxyPort}}
  inet_listener imap_haproxy {
    address = 127.0.0.1
    port = {{.HAProxyPort}}
    haproxy = yes
    ssl = yes
  }
{{- end}}
  service_count = 0
  process_min_avail = 1
{{- if not .Chroot}}
  chroot =
{{- end}}
}
service anvil {
{{- if not .Chroot}}
  chroot =
{{- end}}
  # Without this, anvil grows a per-IP penalty (0.5 s, 4.5 s, ... 15 s)
  # after consecutive failures from 127.0.0.1. Side effect: one
  # "net_connect_unix(anvil-auth-penalty) failed" line per auth start.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  # imap processes run as the mail user, not in Dovecot's group.
  unix_listener stats-writer {
    mode = 0666
  }
}
`))

func renderConf(d confData) ([]byte, error) {
	var b bytes.Buffer
	if err := confTemplate.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// confValueOK reports whether s can go into dovecot.conf as a bare value.
func confValueOK(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n\"'#{}$<%")
}

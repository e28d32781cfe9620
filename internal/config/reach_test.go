package config

import (
	"strings"
	"testing"
	"time"
)

// testHash is a bcrypt hash (cost 4) of "s3cret-admin".
const testHash = "$2a$04$dexihQ/bV/HGafUrwTLD5OIw6ak7EUn2a5ZGJGdfW1wYCj3WjFi8i"

func TestReachDefaults(t *testing.T) {
	c, err := Parse(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Web
	if w.Address != "" || w.Mode != WebModeAuto || w.IncidentTTL.D() != time.Hour || w.MaxIncidents != 10000 {
		t.Errorf("web defaults: %+v", w)
	}
	h := c.Notify.Webhook
	if h.URL != "" || h.PerMinute != 30 || h.Queue != 100 || h.MaxTries != 5 || h.Timeout.D() != 10*time.Second || c.Notify.Desktop {
		t.Errorf("notify defaults: %+v", c.Notify)
	}
	for _, l := range c.Listeners {
		if l.NoticeMailbox {
			t.Errorf("notice_mailbox on by default: %+v", l)
		}
	}
	if !c.LocalMode() {
		t.Error("the default (loopback listeners) is not local mode")
	}
}

func TestLocalMode(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want bool
	}{
		{"loopback", "listeners: [{address: '127.0.0.1:993'}, {address: '[::1]:993'}]", true},
		{"localhost", "listeners: [{address: 'localhost:993'}]", true},
		{"home network", "listeners: [{address: '192.168.1.10:993'}, {address: '10.0.0.2:993'}, {address: '[fd00::1]:993'}]", true},
		{"wildcard", "listeners: [{address: '0.0.0.0:993'}]", false},
		{"empty host", "listeners: [{address: ':993'}]", false},
		{"public", "listeners: [{address: '127.0.0.1:993'}, {address: '203.0.113.5:993'}]", false},
		{"admin set", "listeners: [{address: '127.0.0.1:993'}]\nweb: {admin: {user: a, password_hash: '" + testHash + "'}}", false},
		{"forced local", "listeners: [{address: '0.0.0.0:993'}]\nweb: {mode: local}", true},
		{"forced gateway", "listeners: [{address: '127.0.0.1:993'}]\nweb: {mode: gateway}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.LocalMode(); got != tt.want {
				t.Errorf("LocalMode() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReachValid(t *testing.T) {
	c, err := Parse(strings.NewReader(`
listeners:
  - {address: '127.0.0.1:1993', notice_mailbox: true}
web:
  address: 127.0.0.1:8443
  incident_ttl: 30m
  max_incidents: 50
notify:
  webhook: {url: 'http://127.0.0.1:9000/hook', per_minute: 5, queue: 10, max_tries: 2, timeout: 3s}
  desktop: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Listeners[0].NoticeMailbox || c.Web.Address != "127.0.0.1:8443" || c.Web.IncidentTTL.D() != 30*time.Minute ||
		c.Web.MaxIncidents != 50 || c.Notify.Webhook.PerMinute != 5 || !c.Notify.Desktop {
		t.Errorf("read wrongly: %+v", c)
	}
	gw, err := Parse(strings.NewReader(`
listeners: [{address: '0.0.0.0:993'}]
web:
  address: 0.0.0.0:8443
  public_url: https://mail-gw.example.com:8443/
  admin: {user: admin, password_hash: '` + testHash + `'}
notify: {webhook: {url: 'https://hooks.example.com/imapwhy', secret_file: /etc/imapwhy/hook.key}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if gw.LocalMode() || gw.Web.Admin.User != "admin" {
		t.Errorf("gateway read wrongly: %+v", gw.Web)
	}
}

// TestReachInvalid: every error names its key.
func TestReachInvalid(t *testing.T) {
	tests := []struct{ yaml, key string }{
		{"web: {mode: office}", "web.mode"},
		{"web: {address: '8443'}", "web.address"},
		{"web: {address: ':8443'}", "web.address"},
		{"web: {public_url: 'http://x.example.com'}", "web.public_url"},
		{"web: {public_url: 'https://'}", "web.public_url"},
		{"web: {public_url: 'https://x.example.com/?a=b'}", "web.public_url"},
		{"web: {public_url: 'https://u:p@x.example.com'}", "web.public_url"},
		{"web: {max_incidents: -1}", "web.max_incidents"},
		{"web: {incident_ttl: 'soon'}", "line"},
		{"listeners: [{address: '0.0.0.0:993'}]\nweb: {address: '0.0.0.0:8443'}", "web.public_url"},
		{"web: {admin: {user: admin}}", "web.admin.password_hash"},
		{"web: {admin: {password_hash: '" + testHash + "'}}", "web.admin.user"},
		{"web: {admin: {user: admin, password_hash: 'hunter2'}}", "web.admin.password_hash"},
		{"web: {admin: {user: admin, password_hash: '" + testHash + "', password_hash_file: /x}}", "web.admin.password_hash"},
		{"web: {admin: {user: 'a:b', password_hash: '" + testHash + "'}}", "web.admin.user"},
		{"notify: {webhook: {url: 'ftp://x.example.com/'}}", "notify.webhook.url"},
		{"notify: {webhook: {url: 'http://hooks.example.com/x'}}", "notify.webhook.url"},
		{"notify: {webhook: {url: 'https://user:pw@hooks.example.com/x'}}", "notify.webhook.url"},
		{"notify: {webhook: {url: 'not a url'}}", "notify.webhook.url"},
		{"notify: {webhook: {url: 'https://h.example.com/', per_minute: -2}}", "notify.webhook.per_minute"},
		{"notify: {webhook: {url: 'https://h.example.com/', queue: -1}}", "notify.webhook.queue"},
		{"notify: {webhook: {url: 'https://h.example.com/', max_tries: -1}}", "notify.webhook.max_tries"},
		{"listeners: [{address: '0.0.0.0:993'}]\nnotify: {desktop: true}", "notify.desktop"},
		{"listeners: [{address: '127.0.0.1:993', notice_mailbox: yes-please}]", "line 1"},
		{"web: {colour: blue}", "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("%s: error %v, want one naming %s", tt.yaml, err, tt.key)
			}
			if strings.Contains(err.Error(), "$2a$") {
				t.Errorf("the error quotes the password hash: %v", err)
			}
		})
	}
}

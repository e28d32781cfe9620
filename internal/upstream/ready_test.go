package upstream

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// readyConfig is a plaintext upstream at addr with test timeouts.
func readyConfig(addr string) Config {
	return Config{Address: addr, TLS: "none", LoginTimeout: upstreamTestTimeout, DialTimeout: upstreamTestTimeout}
}

// TestReadyLoginLikeLogin: a login on a connection prepared before the
// credentials came observes what Login observes, for a login that works
// and one that is refused.
func TestReadyLoginLikeLogin(t *testing.T) {
	const greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ID] ready"
	for _, reply := range []string{
		"{tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in",
		"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.",
	} {
		addr := testkit.ReplyIMAP(t, greeting, map[string][]string{
			"AUTHENTICATE": {reply},
			"ID":           {`* ID ("name" "test")`, "{tag} OK ID completed"},
		})
		cfg := readyConfig(addr)
		cfg.SendID = true
		cred := Credentials{User: "alice", Password: "s3cret-pass"}
		client := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 4711}

		want := &diagnose.Observation{}
		wantUp, wantErr := Login(context.Background(), cfg, cred, client, want)
		if wantUp != nil {
			wantUp.Conn.Close()
		}

		r, err := Prepare(context.Background(), cfg, client)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		got := &diagnose.Observation{}
		up, err := r.Login(context.Background(), cred, got)
		if (err == nil) != (wantErr == nil) {
			t.Errorf("%s: Ready.Login error %v, Login error %v", reply, err, wantErr)
		}
		if up != nil {
			up.Conn.Close()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: observation\n got: %s\nwant: %s", reply, upstreamFormatObs(*got), upstreamFormatObs(*want))
		}
	}
}

// TestReadyWait: an idle prepared connection is fit for a login until the
// server closes it or says anything; Interrupt ends the wait; Logout says
// LOGOUT and nothing else.
func TestReadyWait(t *testing.T) {
	const greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready"
	logout := make(chan string, 1)
	cases := []struct {
		name   string
		server func(c *testkit.Conn)
		fit    bool
	}{
		{"idle", func(c *testkit.Conn) {
			c.Send(greeting)
			line, _ := c.Line()
			logout <- line
			c.Send("* BYE logging out", line[:2]+" OK LOGOUT completed")
		}, true},
		{"closed by the server", func(c *testkit.Conn) { c.Send(greeting); c.Conn.Close() }, false},
		{"BYE from the server", testkit.Says(greeting, "* BYE idle for too long"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := testkit.Serve(t, nil, c.server)
			r, err := Prepare(context.Background(), readyConfig(addr), nil)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if c.fit {
				// Interrupted, not timed out: the wait deadline is the
				// login timeout's.
				r.Interrupt()
			}
			err = r.Wait()
			if fit := err == nil; fit != c.fit {
				t.Fatalf("Wait: %v, want fit %v", err, c.fit)
			}
			if !c.fit {
				r.Close()
				return
			}
			r.Logout(upstreamTestTimeout)
			if got := <-logout; got != "a1 LOGOUT" {
				t.Errorf("the server got %q, want a1 LOGOUT", got)
			}
		})
	}
}

// TestReadyDropped: a server that closes the prepared connection when the
// login arrives, without a word, gives ErrDropped (the caller may dial
// anew); one that answers, even with BYE, gives its answer.
func TestReadyDropped(t *testing.T) {
	const greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready"
	for _, c := range []struct {
		name    string
		answer  []string
		dropped bool
	}{
		{"closed unanswered", nil, true},
		{"BYE", []string{"* BYE shutting down"}, false},
		{"NO", []string{"a1 NO [AUTHENTICATIONFAILED] Authentication failed."}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := testkit.Serve(t, nil, func(conn *testkit.Conn) {
				conn.Send(greeting)
				conn.Line()
				if c.answer != nil {
					conn.Send(c.answer...)
				}
				conn.Conn.Close()
			})
			r, err := Prepare(context.Background(), readyConfig(addr), nil)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			r.Interrupt()
			if err := r.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			_, err = r.Login(context.Background(), Credentials{User: "alice", Password: "s3cret-pass"}, &diagnose.Observation{})
			if dropped := errors.Is(err, ErrDropped); dropped != c.dropped || err == nil {
				t.Errorf("Login: %v, want dropped %v", err, c.dropped)
			}
		})
	}
}

// TestPrepareFails: a server that is not there, or refuses at the
// greeting, gives an error and no connection.
func TestPrepareFails(t *testing.T) {
	for name, addr := range map[string]string{
		"closed port":  testkit.ClosedPort(t),
		"BYE greeting": testkit.Serve(t, nil, testkit.Says("* BYE too busy")),
	} {
		r, err := Prepare(context.Background(), readyConfig(addr), nil)
		if r != nil || err == nil {
			t.Errorf("%s: Prepare gave %v, %v", name, r, err)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %T %v, want *Error", name, err, err)
		}
	}
}

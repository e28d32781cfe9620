package imitate

import "errors"

// notConnectedText is Microsoft 365's answer to every command after a login
// whose token's user may not open the mailbox (corpus #15, observed).
const notConnectedText = "User is authenticated but not connected."

// serveNotConnected answers the commands after such a login as Exchange
// Online does: BAD to each, and BYE after the second.
func (ls *loginSession) serveNotConnected() {
	for n := 1; ; n++ {
		cmd, err := ls.cr.read()
		if err != nil {
			var se *syntaxError
			if !errors.As(err, &se) {
				return
			}
			cmd = &command{tag: se.tag}
		}
		lines := []string{cmd.tag + " BAD " + notConnectedText}
		if n >= 2 {
			lines = append(lines, "* BYE Connection closed. 14")
		}
		if ls.send(lines...) != nil || n >= 2 {
			return
		}
	}
}

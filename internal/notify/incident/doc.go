// Package incident keeps recent login failures and serves them as web
// pages, for people whose mail app hides the server's words.
//
// Each diagnosed failure becomes an Incident with a random, unguessable,
// short-lived ID (96 bits, base32). The proxy puts a link to its page,
// https://<proxy>/why/<id>, at the end of its NO and ALERT texts. The page
// shows exactly the message the NO said, general steps for the cause and
// the provider's help link, in the language the connection used; never the
// user name, the client's address or any other fact the NO did not say.
// It expires with the incident (404 after Options.TTL).
//
// The status page (/) lists recent failures: in local mode those from the
// viewer's own IP address, in gateway mode every failure, with counts by
// user, cause and provider and a chart of the last 24 hours, behind the
// admin's HTTP Basic credentials (bcrypt). Everything is served from
// embedded files; there are no external assets.
//
//	st := incident.NewStore(incident.StoreOptions{TTL: time.Hour, Max: 10000})
//	in := st.Add(incident.Incident{Cause: d.Cause, Message: text, Lang: "en", ...})
//	link := base + incident.Path(in.ID)
//	h, _ := incident.NewHandler(st, incident.HandlerOptions{Local: true})
//	srv := incident.NewServer(h, tlsConfig, log)
//	srv.Serve(ln)
package incident

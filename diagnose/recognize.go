package diagnose

// Recognize says which mail provider or server software a server is, from
// what Classify uses to tell: the host names (Host, ServerName), the
// greeting, the capabilities (upper case, as in an Observation) and the
// user's email domain (Typed.Username), which picks among providers that
// share servers (Outlook.com or Microsoft 365 on outlook.office365.com).
// A provider is preferred to server software when both are recognised.
// With neither host name set, the user's domain alone names the provider.
// ok is false when the catalog knows nothing.
//
// It is for showing people what they are talking to (`imapwhy check`);
// Classify does the same recognition itself.
func Recognize(o Observation) (p Provider, ok bool) {
	e := catalogData.recognise(&o).best()
	if e == nil {
		return Provider{}, false
	}
	return e.Provider, true
}

package discover

import "testing"

func TestBuiltinCatalog(t *testing.T) {
	r, ok := BuiltinCatalog("gmail.com")
	if !ok || r.Host != "imap.gmail.com" || r.Port != 993 || r.TLS != "implicit" || r.Username != "%EMAILADDRESS%" || r.Provider == "" {
		t.Errorf("gmail.com: %+v %v", r, ok)
	}
	if r, ok := BuiltinCatalog("example.test"); ok {
		t.Errorf("example.test answered: %+v", r)
	}
}

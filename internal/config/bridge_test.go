package config

import (
	"strings"
	"testing"
)

func TestOAuthBridge(t *testing.T) {
	c, err := Parse(strings.NewReader(`
oauth_bridge:
  providers:
    - {kind: microsoft, client_id: abc, domains: [Contoso.Example]}
    - {kind: oidc, name: own, issuer: "https://id.example.test", client_id: x, scopes: [imap, offline_access], users: [Bob@Example.test]}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.OAuthBridge.Providers
	if !c.OAuthBridge.Enabled() || p[0].Name != "microsoft" || p[0].Tenant != "organizations" || p[0].Mechanism != "xoauth2" ||
		p[0].Domains[0] != "contoso.example" || p[1].Users[0] != "bob@example.test" {
		t.Errorf("defaults: %+v", p)
	}
	if c, _ := Parse(strings.NewReader("")); c.OAuthBridge.Enabled() {
		t.Errorf("the bridge is on by default")
	}
	checkRefused(t, []refused{
		{"oauth_bridge: {providers: [{kind: yahoo, client_id: x, domains: [a.example]}]}", "providers[0].kind"},
		{"oauth_bridge: {providers: [{kind: google, domains: [a.example]}]}", "providers[0].client_id"},
		{"oauth_bridge: {providers: [{kind: google, client_id: x}]}", "domains or users"},
		{"oauth_bridge: {providers: [{kind: oidc, issuer: 'http://id.example', client_id: x, scopes: [a], domains: [a.example]}]}", "providers[0].issuer"},
		{"oauth_bridge: {providers: [{kind: oidc, issuer: 'https://id.example', client_id: x, domains: [a.example]}]}", "providers[0].scopes"},
		{"oauth_bridge: {providers: [{kind: google, tenant: common, client_id: x, domains: [a.example]}]}", "providers[0].tenant"},
		{"oauth_bridge: {providers: [{kind: google, client_id: x, mechanism: plain, domains: [a.example]}]}", "providers[0].mechanism"},
		{"oauth_bridge: {providers: [{kind: google, client_id: x, domains: ['a@b']}]}", "providers[0].domains"},
		{"oauth_bridge: {providers: [{kind: google, client_id: x, users: [nobody]}]}", "providers[0].users"},
		{"oauth_bridge: {providers: [{kind: google, client_id: x, domains: [a.example]}, {kind: microsoft, client_id: y, domains: [A.example]}]}", "also in"},
		{"oauth_bridge: {providers: [{kind: google, client_id: x, client_secert_file: f, domains: [a.example]}]}", "client_secert_file"},
	})
}

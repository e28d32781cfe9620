package config

// The OAuth bridge: password-only mail apps on providers that want OAuth.
// imapwhy keeps each connected account's refresh token (encrypted with a
// key derived from the app password) and signs in upstream with an access
// token.

import (
	"fmt"
	"net/url"
	"strings"
)

// Bridge provider kinds.
const (
	BridgeMicrosoft = "microsoft" // Entra ID (Microsoft 365, Outlook.com)
	BridgeGoogle    = "google"    // Google accounts, Gmail
	BridgeOIDC      = "oidc"      // any provider, by its OpenID Connect issuer
)

// OAuthBridge is the bridge's configuration. No provider: off.
type OAuthBridge struct {
	Providers []BridgeProvider `yaml:"providers"`
}

// Enabled reports whether any provider is configured.
func (b OAuthBridge) Enabled() bool { return len(b.Providers) > 0 }

// BridgeProvider is one OAuth provider and the accounts that use it.
type BridgeProvider struct {
	// Kind is microsoft, google or oidc; microsoft and google have their
	// endpoints and scopes built in, oidc needs Issuer.
	Kind string `yaml:"kind"`
	// Name tells providers apart in pages and logs; default: Kind.
	Name string `yaml:"name"`
	// Tenant (microsoft): common, organizations, consumers, or a tenant
	// ID or domain. Default: organizations.
	Tenant string `yaml:"tenant"`
	// Issuer (oidc): the https issuer URL; its discovery document gives
	// the endpoints.
	Issuer string `yaml:"issuer"`
	// ClientID is the operator's own registration with the provider.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret of a confidential client
	// (the first line). Empty: a public client.
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes replace the built-in ones (required for oidc).
	Scopes []string `yaml:"scopes"`
	// Mechanism upstream: xoauth2 (default) or oauthbearer.
	Mechanism string `yaml:"mechanism"`
	// Domains and Users are the accounts that use this provider: an
	// address whose domain is in Domains, or that is in Users. At least
	// one of them is required: the bridge is never implicit.
	Domains []string `yaml:"domains"`
	Users   []string `yaml:"users"`
	// CAFile, if set, is trusted for the provider's HTTPS instead of the
	// system roots (a private provider).
	CAFile string `yaml:"ca_file"`
}

func (c *Config) applyBridgeDefaults() {
	for i := range c.OAuthBridge.Providers {
		p := &c.OAuthBridge.Providers[i]
		if p.Name == "" {
			p.Name = p.Kind
		}
		if p.Kind == BridgeMicrosoft && p.Tenant == "" {
			p.Tenant = "organizations"
		}
		if p.Mechanism == "" {
			p.Mechanism = "xoauth2"
		}
		for j, d := range p.Domains {
			p.Domains[j] = strings.ToLower(strings.TrimSpace(d))
		}
		for j, u := range p.Users {
			p.Users[j] = strings.ToLower(strings.TrimSpace(u))
		}
	}
}

func (c *Config) validateBridge() error {
	names := map[string]bool{}
	accounts := map[string]string{}
	for i, p := range c.OAuthBridge.Providers {
		key := fmt.Sprintf("oauth_bridge.providers[%d]", i)
		switch p.Kind {
		case BridgeMicrosoft, BridgeGoogle:
			if p.Issuer != "" {
				return fmt.Errorf("%s.issuer: only for kind oidc", key)
			}
		case BridgeOIDC:
			u, err := url.Parse(p.Issuer)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return fmt.Errorf("%s.issuer: %q is not an https URL", key, p.Issuer)
			}
			if len(p.Scopes) == 0 {
				return fmt.Errorf("%s.scopes: required for kind oidc (the scope the mail server wants, and offline_access)", key)
			}
		default:
			return fmt.Errorf("%s.kind: %q is not microsoft, google or oidc", key, p.Kind)
		}
		if p.Tenant != "" && p.Kind != BridgeMicrosoft {
			return fmt.Errorf("%s.tenant: only for kind microsoft", key)
		}
		if p.ClientID == "" {
			return fmt.Errorf("%s.client_id: required (register imapwhy with the provider; see the README)", key)
		}
		switch p.Mechanism {
		case "xoauth2", "oauthbearer":
		default:
			return fmt.Errorf("%s.mechanism: %q is not xoauth2 or oauthbearer", key, p.Mechanism)
		}
		if names[p.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, p.Name)
		}
		names[p.Name] = true
		if len(p.Domains) == 0 && len(p.Users) == 0 {
			return fmt.Errorf("%s: name the domains or users that use the bridge", key)
		}
		for _, d := range p.Domains {
			if d == "" || strings.ContainsAny(d, "@ ") {
				return fmt.Errorf("%s.domains: %q is not a domain", key, d)
			}
			if other, ok := accounts["@"+d]; ok {
				return fmt.Errorf("%s.domains: %s is also in %s", key, d, other)
			}
			accounts["@"+d] = key
		}
		for _, u := range p.Users {
			if !strings.Contains(u, "@") {
				return fmt.Errorf("%s.users: %q is not a mail address", key, u)
			}
			if other, ok := accounts[u]; ok {
				return fmt.Errorf("%s.users: %s is also in %s", key, u, other)
			}
			accounts[u] = key
		}
	}
	return nil
}

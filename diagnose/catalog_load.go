package diagnose

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// providerSpec is the YAML form of one catalog entry.
type providerSpec struct {
	ID               string            `yaml:"id"`
	Name             string            `yaml:"name"`
	NameJA           string            `yaml:"name_ja"`
	Kind             ProviderKind      `yaml:"kind"`
	Domains          []string          `yaml:"domains"`
	Hosts            []string          `yaml:"hosts"`
	Greeting         []string          `yaml:"greeting"`
	GreetingToken    string            `yaml:"greeting_token"`
	Capabilities     []string          `yaml:"capabilities"`
	Signatures       []string          `yaml:"signatures"`
	IMAP             serverSpec        `yaml:"imap"`
	SMTP             serverSpec        `yaml:"smtp"`
	Username         UsernameForm      `yaml:"username"`
	AcceptsPasswords *bool             `yaml:"accepts_passwords"`
	AppPasswords     AppPasswordPolicy `yaml:"app_passwords"`
	AppPasswordShape string            `yaml:"app_password_shape"`
	ShapeConfidence  Confidence        `yaml:"app_password_shape_confidence"`
	Help             helpSpec          `yaml:"help"`
	Texts            []verdictSpec     `yaml:"texts"`
	Refusal          *verdictSpec      `yaml:"refusal"`
	SharesServers    string            `yaml:"shares_servers_with"`
	Sources          []string          `yaml:"sources"`
	Unconfirmed      map[string]string `yaml:"unconfirmed"`
}

type serverSpec struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	TLS  string `yaml:"tls"`
}

type helpSpec struct {
	AppPassword string `yaml:"app_password"`
	EnableIMAP  string `yaml:"enable_imap"`
	OAuth       string `yaml:"oauth"`
	WebLogin    string `yaml:"web_login"`
	Password    string `yaml:"password"`
	General     string `yaml:"general"`
}

type verdictSpec struct {
	Match       string     `yaml:"match"`
	Cause       Cause      `yaml:"cause"`
	Confidence  Confidence `yaml:"confidence"`
	Alternative Cause      `yaml:"alternative"`
}

// catalogFile is the YAML document.
type catalogFile struct {
	Providers []providerSpec `yaml:"providers"`
}

// maxHelpURL bounds help URLs so that a message with one still fits in
// 200 characters.
const maxHelpURL = 100

// unconfirmedKeys are the facts an `unconfirmed:` note may name.
var unconfirmedKeys = map[string]bool{
	"domains": true, "hosts": true, "greeting": true, "capabilities": true, "signatures": true, "imap": true, "smtp": true,
	"username": true, "accepts_passwords": true, "app_passwords": true,
	"app_password_shape": true, "help": true, "texts": true, "refusal": true,
}

func mustLoadCatalog(data []byte) *catalog {
	c, err := loadCatalog(data)
	if err != nil {
		panic("diagnose: built-in provider catalog: " + err.Error())
	}
	return c
}

// loadCatalog parses and validates a catalog document.
func loadCatalog(data []byte) (*catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f catalogFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(f.Providers) == 0 {
		return nil, errors.New("no providers")
	}
	c := &catalog{ids: map[string]*entry{}, domains: map[string]*entry{}}
	for i := range f.Providers {
		e, err := buildEntry(&f.Providers[i])
		if err != nil {
			return nil, fmt.Errorf("provider %d (%s): %w", i+1, f.Providers[i].ID, err)
		}
		if c.ids[e.ID] != nil {
			return nil, fmt.Errorf("provider %s: duplicate id", e.ID)
		}
		c.ids[e.ID] = e
		c.entries = append(c.entries, e)
	}
	if err := c.index(f.Providers); err != nil {
		return nil, err
	}
	return c, nil
}

// index builds the lookup tables and links entries that share servers.
func (c *catalog) index(specs []providerSpec) error {
	for i, e := range c.entries {
		for _, d := range e.Domains {
			if strings.HasPrefix(d, ".") {
				c.suffixes = append(c.suffixes, suffixEntry{d, e})
				continue
			}
			if c.domains[d] != nil {
				return fmt.Errorf("domain %s: in both %s and %s", d, c.domains[d].ID, e.ID)
			}
			c.domains[d] = e
		}
		for _, h := range specs[i].Hosts {
			c.hosts = append(c.hosts, suffixEntry{h, e})
		}
		if e.shape != nil {
			c.shapes = append(c.shapes, e)
		}
		if e.sharesWith != "" {
			primary := c.ids[e.sharesWith]
			if primary == nil || primary == e {
				return fmt.Errorf("provider %s: shares_servers_with %q: no such provider", e.ID, e.sharesWith)
			}
			primary.siblings = append(primary.siblings, e)
			e.shared = primary
		}
	}
	longestFirst := func(s []suffixEntry) {
		sort.SliceStable(s, func(i, j int) bool { return len(s[i].suffix) > len(s[j].suffix) })
	}
	longestFirst(c.suffixes)
	longestFirst(c.hosts)
	return nil
}

// buildEntry validates one spec and compiles its matchers.
func buildEntry(s *providerSpec) (*entry, error) {
	if err := checkIdentity(s); err != nil {
		return nil, err
	}
	e := &entry{Provider: Provider{
		ID: s.ID, Name: s.Name, NameJA: s.NameJA, Kind: s.Kind,
		Domains:          lowerAll(s.Domains),
		IMAP:             ServerInfo{Host: strings.ToLower(s.IMAP.Host), Port: s.IMAP.Port, TLS: s.IMAP.TLS},
		SMTP:             ServerInfo{Host: strings.ToLower(s.SMTP.Host), Port: s.SMTP.Port, TLS: s.SMTP.TLS},
		Username:         s.Username,
		AcceptsPasswords: s.AcceptsPasswords == nil || *s.AcceptsPasswords,
		AppPasswords:     s.AppPasswords,
		Help: HelpPages{
			AppPassword: s.Help.AppPassword, EnableIMAP: s.Help.EnableIMAP, OAuth: s.Help.OAuth,
			WebLogin: s.Help.WebLogin, Password: s.Help.Password, General: s.Help.General,
		},
		Unconfirmed: s.Unconfirmed,
		Sources:     s.Sources,
	}, sharesWith: s.SharesServers}
	if e.Username == "" {
		e.Username = UsernameAny
	}
	if e.AppPasswords == "" {
		e.AppPasswords = AppPasswordsNone
	}
	s.Hosts = lowerAll(s.Hosts)
	checks := []func(*entry, *providerSpec) error{
		checkNames, checkServer, checkPolicies, checkHelp, compileMatchers, compileTexts, checkUnconfirmed,
	}
	for _, check := range checks {
		if err := check(e, s); err != nil {
			return nil, err
		}
	}
	return e, nil
}

var idRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkIdentity(s *providerSpec) error {
	if !idRE.MatchString(s.ID) {
		return fmt.Errorf("id %q: want lower-case letters, digits and '_'", s.ID)
	}
	if s.Kind != KindProvider && s.Kind != KindSoftware {
		return fmt.Errorf("kind %q: want provider or software", s.Kind)
	}
	if len(s.Sources) == 0 {
		return errors.New("no sources")
	}
	return nil
}

func checkNames(e *entry, s *providerSpec) error {
	if e.Name == "" || !isASCIIPrintable(e.Name) || len(e.Name) > 40 {
		return fmt.Errorf("name %q: want 1-40 printable ASCII characters (it goes into English messages)", e.Name)
	}
	if strings.ContainsAny(e.Name+e.NameJA, "{}") || sanitizeLine(e.NameJA, len(e.NameJA)) != e.NameJA {
		return errors.New("name: no braces or control characters")
	}
	for _, d := range append(append([]string{}, e.Domains...), s.Hosts...) {
		if !hostRE.MatchString(strings.TrimPrefix(d, ".")) {
			return fmt.Errorf("domain or host %q: not a host name", d)
		}
	}
	if e.Kind == KindSoftware && len(e.Domains) > 0 {
		return errors.New("software entries have no email domains")
	}
	if e.Kind == KindProvider && len(e.Domains) == 0 && len(s.Hosts) == 0 && e.sharesWith == "" {
		return errors.New("a provider needs domains, hosts or shares_servers_with")
	}
	if e.Kind == KindSoftware && len(s.Greeting) == 0 && len(s.Capabilities) == 0 && len(s.Signatures) == 0 {
		return errors.New("software needs a greeting, capability or signature pattern")
	}
	return nil
}

var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

func checkServer(e *entry, _ *providerSpec) error {
	srv := e.IMAP
	if srv.Host == "" {
		if srv.Port != 0 || srv.TLS != "" {
			return errors.New("imap: port or tls without host")
		}
		if e.Kind == KindProvider && e.Unconfirmed["imap"] == "" {
			return errors.New("imap: a provider without a server needs an `unconfirmed: imap` note saying why")
		}
	}
	if (srv.Host != "" || e.SMTP.Host != "") && e.Kind == KindSoftware {
		return errors.New("imap, smtp: software entries have no server")
	}
	if err := checkServerInfo("imap", srv); err != nil {
		return err
	}
	if e.SMTP.Host == "" && (e.SMTP.Port != 0 || e.SMTP.TLS != "") {
		return errors.New("smtp: port or tls without host")
	}
	return checkServerInfo("smtp", e.SMTP)
}

// checkServerInfo checks a server given with a host: its host name, port
// and TLS mode.
func checkServerInfo(what string, srv ServerInfo) error {
	if srv.Host == "" {
		return nil
	}
	host := strings.ReplaceAll(srv.Host, "{domain}", "example.jp")
	if !hostRE.MatchString(host) {
		return fmt.Errorf("%s host %q: not a host name", what, srv.Host)
	}
	if srv.Port < 1 || srv.Port > 65535 {
		return fmt.Errorf("%s port %d: out of range", what, srv.Port)
	}
	switch srv.TLS {
	case "implicit", "starttls":
	default:
		return fmt.Errorf("%s tls %q: want implicit or starttls", what, srv.TLS)
	}
	return nil
}

func checkPolicies(e *entry, s *providerSpec) error {
	switch e.Username {
	case UsernameAddress, UsernameLocalPart, UsernameAny:
	default:
		return fmt.Errorf("username %q: want address, local_part or any", e.Username)
	}
	switch e.AppPasswords {
	case AppPasswordsRequired, AppPasswordsOptional, AppPasswordsNone:
	default:
		return fmt.Errorf("app_passwords %q: want required, optional or none", e.AppPasswords)
	}
	if s.AppPasswordShape != "" {
		if e.AppPasswords == AppPasswordsNone {
			return errors.New("app_password_shape without app passwords")
		}
		re, err := regexp.Compile(s.AppPasswordShape)
		if err != nil {
			return fmt.Errorf("app_password_shape: %w", err)
		}
		if !strings.HasPrefix(s.AppPasswordShape, "^") || !strings.HasSuffix(s.AppPasswordShape, "$") {
			return errors.New("app_password_shape: must be anchored with ^ and $")
		}
		e.shape = re
		e.shapeConf = Medium
		switch s.ShapeConfidence {
		case "", Medium:
		case Low:
			e.shapeConf = Low
		default:
			return fmt.Errorf("app_password_shape_confidence %q: want medium or low", s.ShapeConfidence)
		}
	} else if s.ShapeConfidence != "" {
		return errors.New("app_password_shape_confidence without app_password_shape")
	}
	if !e.AcceptsPasswords && e.AppPasswords == AppPasswordsRequired {
		return errors.New("accepts_passwords false contradicts app_passwords required")
	}
	return nil
}

func checkHelp(e *entry, _ *providerSpec) error {
	h := e.Help
	for _, u := range []string{h.AppPassword, h.EnableIMAP, h.OAuth, h.WebLogin, h.Password, h.General} {
		if u == "" {
			continue
		}
		if !validHelpURL(u) {
			return fmt.Errorf("help URL %q: want an https URL of at most %d ASCII characters", u, maxHelpURL)
		}
	}
	return nil
}

// validHelpURL reports whether u may go into a message.
func validHelpURL(u string) bool {
	if len(u) > maxHelpURL || !isASCIIPrintable(u) || strings.ContainsAny(u, " {}\"<>\\") {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "https" && p.Host != ""
}

func compileMatchers(e *entry, s *providerSpec) error {
	for _, g := range s.Greeting {
		re, err := regexp.Compile(g)
		if err != nil {
			return fmt.Errorf("greeting: %w", err)
		}
		e.greeting = append(e.greeting, newMatcher(re))
	}
	if s.GreetingToken != "" {
		re, err := regexp.Compile(s.GreetingToken)
		if err != nil {
			return fmt.Errorf("greeting_token: %w", err)
		}
		e.greetingToken = re
	}
	for _, c := range s.Capabilities {
		re, err := regexp.Compile(c)
		if err != nil {
			return fmt.Errorf("capabilities: %w", err)
		}
		e.capabilities = append(e.capabilities, re)
	}
	for _, g := range s.Signatures {
		re, err := regexp.Compile(g)
		if err != nil {
			return fmt.Errorf("signatures: %w", err)
		}
		e.signatures = append(e.signatures, newMatcher(re))
	}
	return nil
}

func compileTexts(e *entry, s *providerSpec) error {
	for _, t := range s.Texts {
		v, err := t.verdict()
		if err != nil {
			return fmt.Errorf("texts: %w", err)
		}
		if t.Match == "" {
			return errors.New("texts: a rule needs match")
		}
		re, err := regexp.Compile("(?i)" + t.Match)
		if err != nil {
			return fmt.Errorf("texts: %w", err)
		}
		e.texts = append(e.texts, textRule{re: re, v: v})
	}
	if s.Refusal != nil {
		if s.Refusal.Match != "" {
			return errors.New("refusal: takes no match")
		}
		v, err := s.Refusal.verdict()
		if err != nil {
			return fmt.Errorf("refusal: %w", err)
		}
		e.refusal = &v
	}
	return nil
}

func (t verdictSpec) verdict() (verdict, error) {
	v := verdict{cause: t.Cause, confidence: t.Confidence, alternative: t.Alternative}
	if v.confidence == "" {
		v.confidence = High
	}
	if !v.cause.Valid() {
		return v, fmt.Errorf("unknown cause %q", t.Cause)
	}
	if v.alternative != "" && (!v.alternative.Valid() || v.alternative == v.cause) {
		return v, fmt.Errorf("bad alternative %q", t.Alternative)
	}
	switch v.confidence {
	case High, Medium, Low:
	default:
		return v, fmt.Errorf("confidence %q: want high, medium or low", t.Confidence)
	}
	return v, nil
}

func checkUnconfirmed(e *entry, _ *providerSpec) error {
	for k, note := range e.Unconfirmed {
		if !unconfirmedKeys[k] {
			return fmt.Errorf("unconfirmed: unknown fact %q", k)
		}
		if strings.TrimSpace(note) == "" {
			return fmt.Errorf("unconfirmed %s: empty note", k)
		}
	}
	return nil
}

package diagnose

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxMessage is the longest user message, in characters (runes).
const MaxMessage = 200

// languages are the languages Message has catalogs for; the first is the
// default.
var languages = []string{"en", "ja"}

// Languages returns the languages Message speaks, the default first (for
// the IMAP LANGUAGE extension, RFC 5255).
func Languages() []string {
	return append([]string(nil), languages...)
}

//go:embed messages/*.yaml
var messageFiles embed.FS

// messageCatalogs holds one parsed catalog per language.
var messageCatalogs = mustLoadMessages()

// Message renders the user text for a diagnosis: one line of at most
// MaxMessage characters without control characters, saying what is wrong
// and the one next thing to do, and naming the alternative cause briefly
// when there is one. lang is "ja" or "en" (a tag such as "ja-JP" works;
// anything else gets English). English text is pure ASCII, so it can go
// out before a client has enabled UTF-8.
//
// The only outside values in a message are the provider's name and its
// catalog help URL, both sanitised; never host names or the server's text.
func Message(d Diagnosis, lang string) string {
	lang = baseLanguage(lang)
	c := messageCatalogs[lang]
	name, url := messageProvider(d, lang), d.HelpURL
	if !validHelpURL(url) {
		url = ""
	}
	templates := c.templates(d)
	alt := c.alternative(d)
	if d.Held && d.Cause != CauseCredentialsRepeatedFailure {
		// The password was not sent again: that comes before any second
		// cause.
		alt = c.held
	}
	for _, withAlt := range []bool{true, false} {
		if withAlt && alt == "" {
			continue
		}
		for _, t := range templates {
			if (t.provider && name == "") || (t.url && url == "") {
				continue
			}
			// Neither value can hold a brace, so replacing one after the
			// other cannot expand a placeholder twice.
			s := strings.ReplaceAll(strings.ReplaceAll(t.text, "{provider}", name), "{help_url}", url)
			if withAlt {
				joiner := c.joiner
				if t.urlLast {
					// A link at the end is set off from what follows, or
					// the next words run into it (Japanese has no spaces).
					joiner = " "
				}
				s += joiner + alt
			}
			if utf8.RuneCountInString(s) <= MaxMessage {
				return sanitizeLine(s, 4*MaxMessage)
			}
		}
	}
	// Unreachable with the shipped catalogs (a test checks that the last
	// template of every cause fits), kept as a bound all the same.
	return truncateRunes(sanitizeLine(templates[len(templates)-1].text, 4*MaxMessage), MaxMessage)
}

// saysAlready lists, for a cause, the alternatives its messages already
// give as advice: naming them again would repeat the message.
var saysAlready = map[Cause][]Cause{
	CauseCredentialsRejected: {CauseUsernameMissingDomain, CauseProviderAppPasswordRequired},
}

// alternative is the sentence naming d's second cause, "" if none or if
// the message already gives that advice.
func (c *messageCatalog) alternative(d Diagnosis) string {
	if d.Alternative == "" || d.Alternative == d.Cause {
		return ""
	}
	for _, said := range saysAlready[d.Cause] {
		if said == d.Alternative {
			return ""
		}
	}
	if d.Proxied {
		if s := c.alternatives[string(d.Alternative)+variantProxied]; s != "" {
			return s
		}
	}
	for _, id := range providerKeys(d.Provider) {
		if s := c.alternatives[string(d.Alternative)+"/"+id]; s != "" {
			return s
		}
	}
	return c.alternatives[string(d.Alternative)]
}

// providerKeys are the catalog IDs whose own wordings apply to a provider:
// its own, then those of the provider whose servers it shares.
func providerKeys(id string) []string {
	e := providerByID(id)
	if e == nil {
		return nil
	}
	if p := e.primary(); p != e {
		return []string{e.ID, p.ID}
	}
	return []string{e.ID}
}

// baseLanguage maps a language tag to a catalog language.
func baseLanguage(tag string) string {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	base, _, _ = strings.Cut(base, "_")
	if _, ok := messageCatalogs[base]; ok {
		return base
	}
	return languages[0]
}

// messageProvider is the provider name to show: none for server software
// (people do not know "Dovecot"), the Japanese name where there is one,
// only ASCII in English, and nothing that is not plainly a name.
func messageProvider(d Diagnosis, lang string) string {
	name := d.ProviderName
	if e := providerByID(d.Provider); e != nil {
		if e.Kind == KindSoftware {
			return ""
		}
		if lang == "ja" && e.NameJA != "" {
			name = e.NameJA
		}
	}
	if !providerNameRE.MatchString(name) || utf8.RuneCountInString(name) > maxProviderName ||
		(lang == "en" && !isASCIIPrintable(name)) {
		return ""
	}
	return name
}

const maxProviderName = 40

// providerNameRE is what a provider name may contain: letters, digits,
// spaces between words, and the punctuation real names use
// ("Yahoo! JAPAN Mail", "@nifty", "SoftBank E-mail (i)").
var providerNameRE = regexp.MustCompile(`^[\p{L}\p{N}\p{M}!&'().@-]+( [\p{L}\p{N}\p{M}!&'().@-]+)*$`)

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// messageCatalog is one language's messages.
type messageCatalog struct {
	lang         string
	joiner       string                // between the message and the alternative's sentence
	causes       map[string][]template // "cause" or "cause/provider-id"
	alternatives map[string]string     // "cause" or "cause/provider-id"
	held         string                // added when the proxy held the password back
}

// template is one wording of a message.
type template struct {
	text     string
	provider bool // uses {provider}
	url      bool // uses {help_url}
	urlLast  bool // ends with {help_url}
}

// Variants of a cause's wording, chosen by what a Diagnosis says:
//
//	cause/provider-id      the provider's own wording (or that of the
//	                       provider whose servers it shares)
//	cause~unsure           confidence below high: the wording must not
//	                       assert what was not seen
//	cause~no_app_passwords a known provider that has no app passwords
//	cause                  the general wording
//
// and, before all of them, for a login that came through the proxy
// (Diagnosis.Proxied):
//
//	cause~proxied          the server, port and TLS that failed are
//	                       imapwhy's upstream setting, not the mail app's:
//	                       the wording says so and whom to tell
const (
	variantUnsure         = "~unsure"
	variantNoAppPasswords = "~no_app_passwords"
	variantProxied        = "~proxied"
)

// templates returns the wordings for a diagnosis, the most fitting first.
func (c *messageCatalog) templates(d Diagnosis) []template {
	cause := string(d.Cause)
	if d.Proxied {
		if ts := c.causes[cause+variantProxied]; len(ts) > 0 {
			return ts
		}
	}
	for _, id := range providerKeys(d.Provider) {
		if ts := c.causes[cause+"/"+id]; len(ts) > 0 {
			return ts
		}
	}
	if d.Confidence != "" && d.Confidence != High {
		if ts := c.causes[cause+variantUnsure]; len(ts) > 0 {
			return ts
		}
	}
	if e := providerByID(d.Provider); e != nil && e.Kind == KindProvider && e.AppPasswords == AppPasswordsNone && e.AcceptsPasswords {
		if ts := c.causes[cause+variantNoAppPasswords]; len(ts) > 0 {
			return ts
		}
	}
	if ts := c.causes[cause]; len(ts) > 0 {
		return ts
	}
	return c.causes[string(CauseCredentialsRejected)]
}

// messageFile is the YAML form of a catalog.
type messageFile struct {
	Causes       map[string][]string `yaml:"causes"`
	Alternatives map[string]string   `yaml:"alternatives"`
	Held         string              `yaml:"held"`
}

func mustLoadMessages() map[string]*messageCatalog {
	cats := make(map[string]*messageCatalog, len(languages))
	for _, lang := range languages {
		data, err := messageFiles.ReadFile("messages/" + lang + ".yaml")
		if err != nil {
			panic("diagnose: " + err.Error())
		}
		c, err := loadMessages(lang, data)
		if err != nil {
			panic("diagnose: messages/" + lang + ".yaml: " + err.Error())
		}
		cats[lang] = c
	}
	return cats
}

var placeholderRE = regexp.MustCompile(`\{[^}]*\}`)

// loadMessages parses and checks one catalog: complete for every cause,
// known placeholders only, one line, ASCII in English, and a last wording
// without placeholders for every cause.
func loadMessages(lang string, data []byte) (*messageCatalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f messageFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c := &messageCatalog{lang: lang, joiner: " ", causes: map[string][]template{}, alternatives: map[string]string{}}
	if lang == "ja" {
		c.joiner = ""
	}
	for key, texts := range f.Causes {
		ts, err := buildTemplates(lang, key, texts)
		if err != nil {
			return nil, err
		}
		c.causes[key] = ts
	}
	for key, text := range f.Alternatives {
		cause, provider, _ := strings.Cut(key, "/")
		cause, proxied := strings.CutSuffix(cause, variantProxied)
		if proxied && provider != "" {
			return nil, fmt.Errorf("alternatives %s: a proxied sentence has no provider", key)
		}
		if !Cause(cause).Valid() {
			return nil, fmt.Errorf("alternatives: unknown cause %q", key)
		}
		if provider != "" && providerByID(provider) == nil {
			return nil, fmt.Errorf("alternatives %s: unknown provider %q", key, provider)
		}
		if err := checkText(lang, text); err != nil || strings.Contains(text, "{") {
			return nil, fmt.Errorf("alternatives %s: %v", key, errors.Join(err, errors.New("no placeholders")))
		}
		c.alternatives[key] = text
	}
	if err := checkText(lang, f.Held); err != nil || strings.Contains(f.Held, "{") {
		return nil, fmt.Errorf("held: %v", errors.Join(err, errors.New("no placeholders")))
	}
	c.held = f.Held
	for _, cause := range Causes() {
		if len(c.causes[string(cause)]) == 0 {
			return nil, fmt.Errorf("causes: no message for %s", cause)
		}
		if c.alternatives[string(cause)] == "" {
			return nil, fmt.Errorf("alternatives: no sentence for %s", cause)
		}
		// Through the proxy, the server that failed is imapwhy's upstream,
		// not the mail app's: those causes need words that say so.
		if upstreamSetting(cause) {
			if len(c.causes[string(cause)+variantProxied]) == 0 || c.alternatives[string(cause)+variantProxied] == "" {
				return nil, fmt.Errorf("causes, alternatives: no %s%s wording", cause, variantProxied)
			}
		}
	}
	return c, nil
}

func buildTemplates(lang, key string, texts []string) ([]template, error) {
	cause, provider, _ := strings.Cut(key, "/")
	cause, variant, hasVariant := strings.Cut(cause, "~")
	if !Cause(cause).Valid() {
		return nil, fmt.Errorf("causes: unknown cause %q", cause)
	}
	if provider != "" && providerByID(provider) == nil {
		return nil, fmt.Errorf("causes %s: unknown provider %q", key, provider)
	}
	if hasVariant && ("~"+variant != variantUnsure && "~"+variant != variantNoAppPasswords && "~"+variant != variantProxied || provider != "") {
		return nil, fmt.Errorf("causes %s: unknown variant %q", key, variant)
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("causes %s: no wording", key)
	}
	ts := make([]template, 0, len(texts))
	for _, text := range texts {
		if err := checkText(lang, text); err != nil {
			return nil, fmt.Errorf("causes %s: %w", key, err)
		}
		t := template{text: text, urlLast: strings.HasSuffix(text, "{help_url}")}
		if i := strings.Index(text, "{help_url}"); i >= 0 && !t.urlLast && text[i+len("{help_url}")] != ' ' {
			// A link must end at a space or the end of the text: a
			// bracket or a word right after it becomes part of the link.
			return nil, fmt.Errorf("causes %s: {help_url} must be followed by a space or end the text", key)
		}
		for _, ph := range placeholderRE.FindAllString(text, -1) {
			switch ph {
			case "{provider}":
				t.provider = true
			case "{help_url}":
				t.url = true
			default:
				return nil, fmt.Errorf("causes %s: unknown placeholder %s", key, ph)
			}
		}
		ts = append(ts, t)
	}
	if last := ts[len(ts)-1]; last.provider || last.url {
		return nil, fmt.Errorf("causes %s: the last wording must have no placeholders", key)
	}
	return ts, nil
}

// upstreamSetting: the cause is about the server, port or TLS mode the
// login went to (and the network on the way), which through the proxy is
// imapwhy's own upstream setting.
func upstreamSetting(c Cause) bool {
	s := string(c)
	return strings.HasPrefix(s, "upstream.") || strings.HasPrefix(s, "network.")
}

// checkText: one line, no control characters, ASCII in English.
func checkText(lang, text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return errors.New("empty text")
	case sanitizeLine(text, len(text)) != text:
		return fmt.Errorf("%q: control characters or extra spaces", text)
	case lang == "en" && !isASCIIPrintable(text):
		return fmt.Errorf("%q: English text must be ASCII", text)
	}
	return nil
}

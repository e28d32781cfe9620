package incident

import (
	"html/template"
	"net/http"
	"regexp"
	"strings"
)

// ViewerLanguage is the language the pages answer a request in: ?lang=,
// else the first language of Accept-Language the pages speak, else
// English. Other pages served next to these (the set-up page) use it too.
func ViewerLanguage(r *http.Request) string { return viewerLanguage(r) }

// StyleSheet is the pages' one style sheet, for other pages served next to
// them to look the same.
func StyleSheet() string { return css }

// PageHeaders sets the headers every page carries: the page's
// Content-Security-Policy, no-referrer (a link must not leak to the
// provider's help page), no-store, no framing, no indexing. It reports
// false, with Allow set, for a method other than GET and HEAD: the caller
// answers 405.
func PageHeaders(w http.ResponseWriter, r *http.Request, csp string) bool {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Robots-Tag", "noindex, nofollow")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		return false
	}
	return true
}

// TimeScript is the script that shows a page's <time datetime> elements
// in the viewer's time zone, for other pages served next to these.
func TimeScript() string { return timeJS }

// urlInText finds the web addresses in a message or step; a sentence's
// last full stop or bracket is not part of them.
var urlInText = regexp.MustCompile(`https?://[^\s<>"'）」、。]+[^\s<>"'）」、。.,;:!?)\]]`)

// Linkify is text, escaped, with its http(s) addresses made links.
func Linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range urlInText.FindAllStringIndex(text, -1) {
		b.WriteString(template.HTMLEscapeString(text[last:m[0]]))
		u := template.HTMLEscapeString(text[m[0]:m[1]])
		b.WriteString(`<a href="` + u + `" rel="noreferrer noopener">` + u + `</a>`)
		last = m[1]
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String())
}

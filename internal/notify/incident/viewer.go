package incident

import "net/http"

// ViewerLanguage is the language the pages answer a request in: ?lang=,
// else the first language of Accept-Language the pages speak, else
// English. Other pages served next to these (the set-up page) use it too.
func ViewerLanguage(r *http.Request) string { return viewerLanguage(r) }

// StyleSheet is the pages' one style sheet, for other pages served next to
// them to look the same.
func StyleSheet() string { return css }

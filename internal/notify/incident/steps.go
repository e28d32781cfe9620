package incident

import (
	"embed"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Languages the pages and steps are written in; the first is the default.
var languages = []string{"en", "ja"}

//go:embed steps/*.yaml
var stepFiles embed.FS

// stepCatalogs: language -> cause -> steps, checked when the package starts.
var stepCatalogs = mustLoadSteps()

// Steps returns the general steps for a cause in a language ("ja", "en";
// anything else gets English): what to do, in order. Unknown causes get
// credentials.rejected's checklist.
func Steps(c diagnose.Cause, lang string) []string {
	cat := stepCatalogs[Language(lang)]
	if s, ok := cat[c]; ok {
		return append([]string(nil), s...)
	}
	return append([]string(nil), cat[diagnose.CauseCredentialsRejected]...)
}

// Language maps a language tag ("ja-JP", "en") to one the pages speak.
func Language(tag string) string {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	base, _, _ = strings.Cut(base, "_")
	for _, l := range languages {
		if base == l {
			return l
		}
	}
	return languages[0]
}

func mustLoadSteps() map[string]map[diagnose.Cause][]string {
	out := make(map[string]map[diagnose.Cause][]string, len(languages))
	for _, lang := range languages {
		data, err := stepFiles.ReadFile("steps/" + lang + ".yaml")
		if err == nil {
			out[lang], err = loadSteps(data)
		}
		if err != nil {
			panic(fmt.Sprintf("incident: steps/%s.yaml: %v", lang, err))
		}
	}
	return out
}

// loadSteps parses one catalog and checks it: known causes only, every
// cause present, no empty step.
func loadSteps(data []byte) (map[diagnose.Cause][]string, error) {
	var raw map[string][]string
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(map[diagnose.Cause][]string, len(raw))
	for k, steps := range raw {
		c := diagnose.Cause(k)
		if !c.Valid() {
			return nil, fmt.Errorf("unknown cause %q", k)
		}
		if len(steps) == 0 {
			return nil, fmt.Errorf("%s: no steps", k)
		}
		for _, s := range steps {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\r\n") {
				return nil, fmt.Errorf("%s: empty or multi-line step", k)
			}
		}
		out[c] = steps
	}
	for _, c := range diagnose.Causes() {
		if _, ok := out[c]; !ok {
			return nil, fmt.Errorf("no steps for %s", c)
		}
	}
	return out, nil
}

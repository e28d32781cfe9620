package diagnose

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// The corpus of real login-failure responses, kept in testdata.
var (
	corpusFile       = filepath.Join("testdata", "provider-responses.jsonl")
	corpusLabelsFile = filepath.Join("testdata", "corpus-labels.yaml")
	sharedCorpusFile = filepath.Join("..", "..", "shared", "corpus", "provider-responses.jsonl")
)

// Accuracy thresholds. The labels come from the records' own cause and fix
// fields. With the server host a support desk knows, every record should be
// right; the margin leaves room for one or two corpus additions before the
// classifier catches up. From wire text alone, Microsoft's bare "LOGIN
// failed." and Fastmail's nginx greeting cannot be recognised (3 records).
const (
	minAccuracyWithServer = 0.95
	minAccuracyWireOnly   = 0.90
)

// corpusRecord and corpusLabel are testkit's, with the methods below.
type corpusRecord struct{ testkit.CorpusRecord }

type corpusLabel struct{ testkit.CorpusLabel }

func readCorpus(t testing.TB, path string) []corpusRecord {
	t.Helper()
	var recs []corpusRecord
	for _, r := range testkit.ReadCorpus(t, path) {
		recs = append(recs, corpusRecord{r})
	}
	return recs
}

func readLabels(t testing.TB) map[int]corpusLabel {
	t.Helper()
	labels := map[int]corpusLabel{}
	for _, l := range testkit.ReadCorpusLabels(t, corpusLabelsFile) {
		if _, dup := labels[l.Line]; dup {
			t.Fatalf("%s: line %d labelled twice", corpusLabelsFile, l.Line)
		}
		if len(l.Expect) == 0 {
			t.Fatalf("%s: line %d: no expected cause", corpusLabelsFile, l.Line)
		}
		for _, c := range l.Expect {
			if !Cause(c).Valid() {
				t.Fatalf("%s: line %d: unknown cause %q", corpusLabelsFile, l.Line, c)
			}
		}
		labels[l.Line] = corpusLabel{l}
	}
	return labels
}

// transcript joins a record's greeting, capability and response lines.
func (r corpusRecord) transcript() string {
	var parts []string
	for _, p := range []*string{r.Greeting, r.Capability, r.Response} {
		if p != nil {
			parts = append(parts, *p)
		}
	}
	return strings.Join(parts, "\n")
}

// observation is what Classify sees for a record: its transcript, and
// optionally the server host and the mechanism from the label.
func (r corpusRecord) observation(t testing.TB, l corpusLabel, withServer bool) Observation {
	t.Helper()
	o, err := ParseTranscript(strings.NewReader(r.transcript()))
	if err != nil {
		t.Fatalf("line %d: %v", r.Line, err)
	}
	if withServer {
		o.Host = l.Server
	}
	if o.Mechanism == "" {
		o.Mechanism = l.Mechanism
	}
	return o
}

func (l corpusLabel) accepts(c Cause) bool {
	for _, e := range l.Expect {
		if Cause(e) == c {
			return true
		}
	}
	return false
}

// TestCorpus runs every corpus record with wire text through Classify and
// reports the accuracy against the labels.
func TestCorpus(t *testing.T) {
	records := readCorpus(t, corpusFile)
	labels := readLabels(t)
	checkSharedCorpus(t)

	var total, withServer, wireOnly int
	for _, r := range records {
		l, labelled := labels[r.Line]
		if r.Response == nil {
			if labelled {
				t.Errorf("line %d has no wire text but a label", r.Line)
			}
			continue
		}
		if !labelled {
			t.Errorf("line %d (%s) has wire text but no label in %s", r.Line, r.Provider, corpusLabelsFile)
			continue
		}
		if !strings.HasPrefix(*r.Response, l.Starts) {
			t.Errorf("line %d: response %.40q does not start with the label's %q: corpus changed?", r.Line, *r.Response, l.Starts)
			continue
		}
		total++
		for _, mode := range []bool{true, false} {
			d := Classify(r.observation(t, l, mode))
			for _, lang := range Languages() {
				checkMessage(t, lang, d, Message(d, lang))
			}
			if !l.accepts(d.Cause) {
				t.Logf("miss (server %v): line %d %s: got %s/%s, want %v", mode, r.Line, r.Provider, d.Cause, d.Confidence, l.Expect)
				continue
			}
			if mode {
				withServer++
			} else {
				wireOnly++
			}
		}
	}
	for line := range labels {
		if line < 1 || line > len(records) {
			t.Errorf("label for line %d: no such record", line)
		}
	}
	if total == 0 {
		t.Fatal("no corpus records")
	}
	summary := fmt.Sprintf("corpus accuracy: %d/%d (with the server host a support desk knows); %d/%d from wire text alone",
		withServer, total, wireOnly, total)
	t.Log(summary)
	fmt.Println(summary) // for the CI log, also without -v
	var providers, software int
	for _, e := range catalogData.entries {
		if e.Kind == KindProvider {
			providers++
		} else if e.ID != "imapwhy" {
			software++
		}
	}
	fmt.Printf("catalog: %d mail providers and %d server programs recognised\n", providers, software)
	if float64(withServer) < minAccuracyWithServer*float64(total) {
		t.Errorf("accuracy with server %d/%d below %.0f%%", withServer, total, 100*minAccuracyWithServer)
	}
	if float64(wireOnly) < minAccuracyWireOnly*float64(total) {
		t.Errorf("accuracy from wire text %d/%d below %.0f%%", wireOnly, total, 100*minAccuracyWireOnly)
	}
}

// checkSharedCorpus notes when the shared corpus (beside the repo, if
// present) has moved on from the copy in testdata. It does not fail: the
// copy and its labels are what this test is about.
func checkSharedCorpus(t *testing.T) {
	data, err := os.ReadFile(sharedCorpusFile)
	if err != nil {
		t.Logf("shared corpus not found (%v); using the copy in testdata", err)
		return
	}
	mine, err := os.ReadFile(corpusFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, mine) {
		t.Logf("NOTE: %s differs from %s: copy it again and label new records", sharedCorpusFile, corpusFile)
	}
}

// TestIssueTranscripts: failure texts as pasted into public issue threads
// (testdata/issue-transcripts.yaml) get an acceptable cause, never with
// more confidence than the text supports.
func TestIssueTranscripts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "issue-transcripts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Transcripts []struct {
			Source        string     `yaml:"source"`
			Text          string     `yaml:"text"`
			Server        string     `yaml:"server"`
			Expect        []Cause    `yaml:"expect"`
			MaxConfidence Confidence `yaml:"max_confidence"`
		} `yaml:"transcripts"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	rank := map[Confidence]int{"": 2, Low: 0, Medium: 1, High: 2}
	right := 0
	for _, tc := range f.Transcripts {
		o, err := ParseTranscript(strings.NewReader(tc.Text))
		if err != nil {
			t.Errorf("%s: %v", tc.Source, err)
			continue
		}
		o.Host = tc.Server
		d := Classify(o)
		ok := false
		for _, c := range tc.Expect {
			ok = ok || c == d.Cause
		}
		switch {
		case !ok:
			t.Errorf("%s: %s/%s, want one of %v", tc.Source, d.Cause, d.Confidence, tc.Expect)
		case rank[d.Confidence] > rank[tc.MaxConfidence]:
			t.Errorf("%s: %s at %s, more than %s", tc.Source, d.Cause, d.Confidence, tc.MaxConfidence)
		default:
			right++
		}
	}
	fmt.Printf("issue transcripts: %d/%d with an acceptable cause and confidence\n", right, len(f.Transcripts))
}

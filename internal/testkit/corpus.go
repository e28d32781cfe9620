package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// CorpusRecord is one line of diagnose/testdata/provider-responses.jsonl:
// what a real server answered to a failed login, and why.
type CorpusRecord struct {
	Line           int     `json:"-"` // 1-based line in the file
	Provider       string  `json:"provider"`
	ServerSoftware string  `json:"server_software"`
	Greeting       *string `json:"greeting"`
	Capability     *string `json:"capability"`
	Command        string  `json:"command"`
	Response       *string `json:"response"`
	Cause          string  `json:"cause"`
	Fix            string  `json:"fix"`
}

// CorpusLabel is one record of diagnose/testdata/corpus-labels.yaml: the
// causes a corpus line must be diagnosed as.
type CorpusLabel struct {
	Line      int      `yaml:"line"`
	Starts    string   `yaml:"starts"`
	Expect    []string `yaml:"expect"`
	Server    string   `yaml:"server"`
	Mechanism string   `yaml:"mechanism"`
	Note      string   `yaml:"note"`
}

// ReadCorpus reads the corpus records of the JSON lines file at path.
func ReadCorpus(t testing.TB, path string) []CorpusRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []CorpusRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r CorpusRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		r.Line = line
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// ReadCorpusLabels reads the labels file at path (unknown keys are errors).
func ReadCorpusLabels(t testing.TB, path string) []CorpusLabel {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Records []CorpusLabel `yaml:"records"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f.Records
}

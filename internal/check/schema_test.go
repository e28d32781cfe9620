package check

// The --json output's contract: required fields and their JSON types.
// Programs rely on these; optional fields are checked when present.

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// field is one property of a JSON object in the schema.
type field struct {
	kind     string           // "string", "number", "bool", "object", "array"
	required bool             // must be present (optional ones are checked when present)
	enum     []string         // allowed values of a string
	object   map[string]field // an object's properties; no others are allowed
	items    *field           // an array's elements
	check    func(any) error  // more, for this field's value
}

var statusEnum = []string{string(StatusOK), string(StatusWarning), string(StatusFailed), string(StatusSkipped)}

var diagnosisSchema = field{kind: "object", object: map[string]field{
	"cause":         {kind: "string", required: true},
	"code":          {kind: "string", required: true},
	"confidence":    {kind: "string", required: true, enum: []string{"high", "medium", "low"}},
	"temporary":     {kind: "bool", required: true},
	"message":       {kind: "string", required: true},
	"provider":      {kind: "string"},
	"provider_name": {kind: "string"},
	"alternative":   {kind: "string"},
	"help_url":      {kind: "string"},
	"detail":        {kind: "string"},
}}

var stringArray = &field{kind: "string"}

// reportSchema is the --json object.
var reportSchema = field{kind: "object", object: map[string]field{
	"address": {kind: "string", required: true},
	"user":    {kind: "string", required: true},
	"lang":    {kind: "string", required: true, enum: []string{"en", "ja"}},
	"ok":      {kind: "bool", required: true},
	"token": {kind: "object", object: map[string]field{
		"summary":   {kind: "string", required: true},
		"form":      {kind: "string", required: true, enum: []string{"jwt", "google", "opaque"}},
		"audiences": {kind: "array", items: stringArray},
		"scopes":    {kind: "array", items: stringArray},
		"roles":     {kind: "array", items: stringArray},
		"expires":   {kind: "string"},
		"expired":   {kind: "bool", required: true},
		"tenant":    {kind: "string"},
		"challenge": {kind: "object", object: map[string]field{
			"status":               {kind: "string", required: true},
			"schemes":              {kind: "string"},
			"scope":                {kind: "string"},
			"openid-configuration": {kind: "string"},
		}},
	}},
	"server": {kind: "object", required: true, object: map[string]field{
		"host":      {kind: "string", required: true},
		"port":      {kind: "number", required: true},
		"tls":       {kind: "string", required: true},
		"source":    {kind: "string", required: true},
		"detail":    {kind: "string"},
		"provider":  {kind: "string"},
		"addresses": {kind: "array", items: stringArray},
		"connected": {kind: "string"},
	}},
	"tls": {kind: "object", object: map[string]field{
		"version":      {kind: "string"},
		"cipher":       {kind: "string"},
		"server_name":  {kind: "string", required: true},
		"subject":      {kind: "string", required: true},
		"names":        {kind: "array", required: true, items: stringArray},
		"issuer":       {kind: "string", required: true},
		"not_after":    {kind: "string", required: true},
		"name_matches": {kind: "bool", required: true},
		"verified":     {kind: "bool", required: true},
		"verify_error": {kind: "string"},
	}},
	"imap": {kind: "object", required: true, object: map[string]field{
		"greeting":       {kind: "string"},
		"software":       {kind: "string"},
		"software_id":    {kind: "string"},
		"capabilities":   {kind: "array", items: stringArray},
		"login_disabled": {kind: "bool", required: true},
		"starttls":       {kind: "bool", required: true},
		"mechanism":      {kind: "string"},
		"inbox_messages": {kind: "number"},
	}},
	"steps": {kind: "array", required: true, items: &field{kind: "object", object: map[string]field{
		"name": {kind: "string", required: true, enum: []string{StepDiscovery, StepDNS, StepTCP, StepTLS,
			StepGreeting, StepStartTLS, StepCapability, StepLogin, StepInbox, StepLogout}},
		"status":      {kind: "string", required: true, enum: statusEnum},
		"duration_ms": {kind: "number", required: true},
		"summary":     {kind: "string", required: true},
		"details":     {kind: "array", required: true, items: stringArray},
		"error":       {kind: "string"},
		"diagnosis":   diagnosisSchema,
	}}},
	"checklist": {kind: "array", required: true, check: checklistIDs, items: &field{kind: "object", object: map[string]field{
		"id":       {kind: "string", required: true},
		"question": {kind: "string", required: true},
		"status":   {kind: "string", required: true, enum: statusEnum},
		"answer":   {kind: "string", required: true},
	}}},
	"diagnosis": diagnosisSchema,
	"error":     {kind: "string"},
}}

// checklistIDs: the four questions, in order.
func checklistIDs(v any) error {
	var ids []string
	for _, it := range v.([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	if want := []string{ItemPassword, ItemServerName, ItemPort, ItemTLS}; !slices.Equal(ids, want) {
		return fmt.Errorf("checklist ids %q, want %q", ids, want)
	}
	return nil
}

// wantSchema checks a --json document against reportSchema, and that a
// failed report has a diagnosis and a passed one has none.
func wantSchema(t *testing.T, doc []byte) {
	t.Helper()
	v := mustUnmarshal(t, doc)
	for _, err := range validate("$", v, reportSchema) {
		t.Errorf("JSON schema: %v", err)
	}
	m, _ := v.(map[string]any)
	if _, has := m["diagnosis"]; has == m["ok"] {
		t.Errorf("JSON: ok is %v and diagnosis present is %v", m["ok"], has)
	}
}

// validate returns every way v differs from f.
func validate(path string, v any, f field) []error {
	if !hasKind(v, f.kind) {
		return []error{fmt.Errorf("%s: %T, want %s", path, v, f.kind)}
	}
	var errs []error
	if s, ok := v.(string); ok && f.enum != nil && !slices.Contains(f.enum, s) {
		errs = append(errs, fmt.Errorf("%s: %q, want one of %q", path, s, f.enum))
	}
	if f.check != nil {
		if err := f.check(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for name, sub := range f.object {
			child, ok := x[name]
			if !ok {
				if sub.required {
					errs = append(errs, fmt.Errorf("%s.%s: missing", path, name))
				}
				continue
			}
			errs = append(errs, validate(path+"."+name, child, sub)...)
		}
		for name := range x {
			if _, ok := f.object[name]; !ok {
				errs = append(errs, fmt.Errorf("%s.%s: not in the schema", path, name))
			}
		}
	case []any:
		for i, item := range x {
			errs = append(errs, validate(fmt.Sprintf("%s[%d]", path, i), item, *f.items)...)
		}
	}
	return errs
}

func hasKind(v any, kind string) bool {
	switch v.(type) {
	case string:
		return kind == "string"
	case float64:
		return kind == "number"
	case bool:
		return kind == "bool"
	case map[string]any:
		return kind == "object"
	case []any:
		return kind == "array"
	}
	return false
}

func mustUnmarshal(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return v
}

package diagnose

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestFacts(t *testing.T) {
	cases := []struct {
		user, pass string
		want       Typed
	}{
		{"bob@example.com", "secret", Typed{Username: "bob@example.com", UserHasDomain: true, PasswordLength: 6}},
		{"bob", "", Typed{Username: "bob", PasswordEmpty: true}},
		{"bob@", "x", Typed{Username: "bob@", PasswordLength: 1}},
		{" bob@example.com", "x", Typed{Username: " bob@example.com", UserHasDomain: true, UserSurroundingSpace: true, PasswordLength: 1}},
		{"ｂｏｂ@example.com", "x", Typed{Username: "ｂｏｂ@example.com", UserHasDomain: true, UserFullwidth: true, PasswordLength: 1}},
		{"bob＠example.com", "x", Typed{Username: "bob＠example.com", UserFullwidth: true, PasswordLength: 1}},
		{"u@x.jp", "secret ", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordSurroundingSpace: true, PasswordLength: 7}},
		{"u@x.jp", "\tsecret", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordSurroundingSpace: true, PasswordLength: 7}},
		{"u@x.jp", "secret\r\n", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordSurroundingSpace: true, PasswordLength: 8}},
		{"u@x.jp", "sec ret", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordLength: 7}},
		{"u@x.jp", "secret\u3000", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordSurroundingSpace: true, PasswordFullwidth: true, PasswordLength: 7}},
		{"u@x.jp", "ｓｅｃｒｅｔ", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordFullwidth: true, PasswordLength: 6}},
		{"u@x.jp", "sec！", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordFullwidth: true, PasswordLength: 4}},
		{"u@x.jp", "パスワード", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordNonASCII: true, PasswordLength: 5}},
		{"u@x.jp", "Passwörd", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordNonASCII: true, PasswordLength: 8}},
		{"u@x.jp", "ｓecret日本", Typed{Username: "u@x.jp", UserHasDomain: true, PasswordFullwidth: true, PasswordNonASCII: true, PasswordLength: 8}},
	}
	for _, tc := range cases {
		got := Facts(tc.user, tc.pass)
		got.AppPasswordShapes = nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Facts(%q, %q)\n got %+v\nwant %+v", tc.user, tc.pass, got, tc.want)
		}
	}
}

func TestAppPasswordShapes(t *testing.T) {
	cases := []struct {
		pass string
		want []string // must contain
		not  []string // must not contain
	}{
		{"abcdefghijklmnop", []string{"gmail", "yahoo", "aol", "fastmail", "yandex"}, []string{"icloud", "docomo"}},
		{"abcd efgh ijkl mnop", []string{"gmail", "yahoo", "aol", "fastmail"}, []string{"yandex", "icloud"}},
		{"abcd efgh ijkl mnop ", []string{"gmail"}, nil}, // the space is its own fact
		{"ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐ", []string{"gmail"}, nil},     // so is full width
		{"abcd-efgh-ijkl-mnop", []string{"icloud"}, []string{"gmail", "yahoo"}},
		{"ABCD-EFGH-IJKL-MNOP", nil, []string{"icloud", "gmail"}},
		{"Ab3dEf5hIj7lMn9p", []string{"fastmail"}, []string{"gmail", "yahoo"}},
		{"aB3$eF5!hJ", []string{"docomo"}, []string{"gmail"}},
		{"correct horse battery staple", nil, []string{"gmail", "yahoo", "icloud", "fastmail", "docomo", "yandex"}},
	}
	for _, tc := range cases {
		got := Facts("u@x.jp", tc.pass).AppPasswordShapes
		for _, id := range tc.want {
			if !slices.Contains(got, id) {
				t.Errorf("%q: shapes %v lack %s", tc.pass, got, id)
			}
		}
		for _, id := range tc.not {
			if slices.Contains(got, id) {
				t.Errorf("%q: shapes %v include %s", tc.pass, got, id)
			}
		}
	}
}

// TestFactsHoldNoPassword: nothing of the password survives in Typed.
func TestFactsHoldNoPassword(t *testing.T) {
	const pass = "Zq8-unique-secret-17"
	got := fmt.Sprintf("%+v %#v", Facts("bob@example.com", pass), Facts("bob@example.com", pass))
	for _, part := range []string{pass, "unique", "secret-17"} {
		if strings.Contains(got, part) {
			t.Errorf("Typed contains %q: %s", part, got)
		}
	}
}

func BenchmarkFacts(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Facts("taro@docomo.ne.jp", "abcd efgh ijkl mnop")
	}
}

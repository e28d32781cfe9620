package diagnose_test

import (
	"fmt"
	"strings"

	"github.com/imapwhy/imapwhy/diagnose"
)

func ExampleClassify() {
	obs := diagnose.Observation{
		Host:      "imap.gmail.com",
		Phase:     diagnose.PhaseLogin,
		Mechanism: "LOGIN",
		Reply:     &diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Invalid credentials (Failure)"},
		Typed:     diagnose.Facts("taro@gmail.com", "my usual password"),
	}
	d := diagnose.Classify(obs)
	fmt.Println(d.Cause, d.Confidence, d.Alternative, d.Code)
	fmt.Println(diagnose.Message(d, "en"))
	// Output:
	// provider.app_password_required medium credentials.rejected AUTHENTICATIONFAILED
	// Gmail takes only app passwords from mail apps, not your Google password. Turn on 2-Step Verification and create one: https://myaccount.google.com/apppasswords Or the password is simply wrong.
}

func ExampleParseTranscript() {
	transcript := `* OK The Microsoft Exchange IMAP4 service is ready. [TABPADQAUAAxADIAMwBDAEEAMAAyADMAMwAuAEcAQgBSAFAAMQAyADMALgBQAFIATwBEAC4ATwBVAFQATABPAE8ASwAuAEMATwBNAA==]
C: a1 LOGIN taro@contoso.example hunter2
a1 NO LOGIN failed.`
	obs, err := diagnose.ParseTranscript(strings.NewReader(transcript))
	if err != nil {
		panic(err)
	}
	d := diagnose.Classify(obs)
	fmt.Println(d.Provider, d.Cause, d.Confidence)
	fmt.Println(diagnose.Message(d, "ja"))
	// Output:
	// microsoft365 provider.oauth_required medium
	// Microsoft 365はメールアプリからのパスワードでのログインを受け付けなくなりました。Microsoft 365のサインイン(OAuth)に対応したアプリでアカウントを追加し直してください。単にパスワードが違う可能性もあります。
}

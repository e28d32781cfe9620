package setup

import "github.com/imapwhy/imapwhy/internal/notify/incident"

// uiText is every text of the set-up page and profile in one language.
type uiText struct {
	Lang, Title, Lead, EmailLabel, Show, Fingerprint, FingerprintNote string

	AppleTitle, AppleDownload string
	AppleSteps                []string

	OtherTitle, CAPEM, CACRT string
	OtherSteps               []string

	CardTitle, CardIncoming, CardOutgoing, CardServer, CardPort, CardSecurity, CardUser, CardPassword string
	CardPasswordValue, SSLOn, STARTTLS, SMTPGuess                                                     string

	ThunderbirdTitle, ThunderbirdText string

	LiveTitle, LiveWaiting, LiveOK, LiveRefused, LiveUntrusted, LiveNoScript string

	LinkExpired, NoCA, BadEmail string

	ProfileName, ProfileDescription, ProfileCADescription string
	ProfileMailName, ProfileMailDescription               string
	WebClipLabel, WebClipDescription                      string
}

var uiTexts = map[string]*uiText{
	"en": {
		Lang:            "en",
		Title:           "Set up your mail app with imapwhy",
		Lead:            "imapwhy stands between your mail app and your mail provider and tells you why a login fails. Enter your email address to get what this device needs.",
		EmailLabel:      "Email address",
		Show:            "Show my settings",
		Fingerprint:     "Fingerprint of imapwhy's certificate authority",
		FingerprintNote: "Your device shows this fingerprint when you install the certificate. Compare the first and last groups: if they differ, do not install it.",

		AppleTitle:    "iPhone, iPad, Mac",
		AppleDownload: "Download the profile",
		AppleSteps: []string{
			"Open Settings: \"Profile Downloaded\" is at the top. Tap it, then Install. (Mac: System Settings, Privacy & Security, Profiles.)",
			"Check that the certificate's fingerprint (More Details) is the one above.",
			"Settings > General > About > Certificate Trust Settings: switch on \"%s\".",
			"Open Mail and type your password (an app password if your provider asks for one). The \"Mail status\" icon on your home screen tells you why a login failed.",
		},

		OtherTitle: "Android and other devices",
		CAPEM:      "Certificate (.pem)",
		CACRT:      "Certificate (.crt)",
		OtherSteps: []string{
			"Download the certificate and install it: Settings > Security > Encryption & credentials > Install a certificate > CA certificate.",
			"Add an account in your mail app with the settings below (choose \"Other\" or \"IMAP\").",
		},

		CardTitle:         "Settings to type",
		CardIncoming:      "Incoming mail (IMAP)",
		CardOutgoing:      "Outgoing mail (SMTP)",
		CardServer:        "Server",
		CardPort:          "Port",
		CardSecurity:      "Security",
		CardUser:          "User name",
		CardPassword:      "Password",
		CardPasswordValue: "your mail password (or app password)",
		SSLOn:             "SSL/TLS",
		STARTTLS:          "STARTTLS",
		SMTPGuess:         "imapwhy does not know your provider's outgoing server: this is a guess, check your provider's help pages.",

		ThunderbirdTitle: "Thunderbird",
		ThunderbirdText:  "Thunderbird finds these settings itself when your company's autoconfig address points at imapwhy. Otherwise type the settings above and import the certificate under Settings > Privacy & Security > Certificates. Through imapwhy, Thunderbird and phone mail apps sign in with a password: they offer OAuth only for the provider's own server names. For an account that takes no passwords (Microsoft 365, Gmail without app passwords), imapwhy's OAuth bridge is the way (ask the administrator).",

		LiveTitle:     "Your device's logins",
		LiveWaiting:   "Waiting for your mail app to log in… Keep this page open while you set it up.",
		LiveOK:        "Your device logged in as %s.",
		LiveRefused:   "The login as %s failed:",
		LiveUntrusted: "Your device does not trust imapwhy's certificate yet: install the profile or the certificate above.",
		LiveNoScript:  "Reload this page to see new logins.",

		LinkExpired: "This set-up link has expired. Open the new one imapwhy shows on the PC (restart it to get one).",
		NoCA:        "imapwhy uses a certificate from a public authority: your device trusts it already.",
		BadEmail:    "That is not an email address: type it like name@example.com.",

		ProfileName:            "imapwhy: %s",
		ProfileDescription:     "Reads your mail through imapwhy at %s, which tells you why a login fails. Holds no password: Mail asks for it.",
		ProfileCADescription:   "Certificate fingerprint: %s. It must match the one on the set-up page and in imapwhy's window.",
		ProfileMailName:        "Mail account",
		ProfileMailDescription: "IMAP account %s through imapwhy",
		WebClipLabel:           "Mail status",
		WebClipDescription:     "Why did my mail login fail?",
	},
	"ja": {
		Lang:            "ja",
		Title:           "imapwhy でメールアプリを設定",
		Lead:            "imapwhy はメールアプリとメールのプロバイダーの間に入り、ログインに失敗した理由をお知らせします。メールアドレスを入力すると、この端末に必要なものが表示されます。",
		EmailLabel:      "メールアドレス",
		Show:            "設定を表示",
		Fingerprint:     "imapwhy の認証局のフィンガープリント",
		FingerprintNote: "証明書をインストールするとき、端末にこのフィンガープリントが表示されます。最初と最後の数組を見比べて、違っていたらインストールしないでください。",

		AppleTitle:    "iPhone・iPad・Mac",
		AppleDownload: "プロファイルをダウンロード",
		AppleSteps: []string{
			"「設定」を開くと、上のほうに「プロファイルがダウンロードされました」とあります。タップして「インストール」します（Mac は「システム設定」の「プライバシーとセキュリティ」の「プロファイル」）。",
			"証明書のフィンガープリント（「詳細」）が上のものと同じか確かめます。",
			"「設定」>「一般」>「情報」>「証明書信頼設定」で「%s」をオンにします。",
			"「メール」を開き、パスワードを入力します（プロバイダーが求める場合はアプリパスワード）。ログインに失敗したら、ホーム画面の「メールの状態」で理由がわかります。",
		},

		OtherTitle: "Android・その他の端末",
		CAPEM:      "証明書（.pem）",
		CACRT:      "証明書（.crt）",
		OtherSteps: []string{
			"証明書をダウンロードしてインストールします（「設定」>「セキュリティ」>「暗号化と認証情報」>「証明書のインストール」>「CA 証明書」）。",
			"メールアプリでアカウントを追加し（「その他」または「IMAP」）、下の設定を入力します。",
		},

		CardTitle:         "入力する設定",
		CardIncoming:      "受信（IMAP）",
		CardOutgoing:      "送信（SMTP）",
		CardServer:        "サーバー",
		CardPort:          "ポート",
		CardSecurity:      "セキュリティ",
		CardUser:          "ユーザー名",
		CardPassword:      "パスワード",
		CardPasswordValue: "メールのパスワード（またはアプリパスワード）",
		SSLOn:             "SSL/TLS",
		STARTTLS:          "STARTTLS",
		SMTPGuess:         "imapwhy はこのプロバイダーの送信サーバーを知りません。これは推測です。プロバイダーのヘルプで確かめてください。",

		ThunderbirdTitle: "Thunderbird",
		ThunderbirdText:  "会社の autoconfig のアドレスが imapwhy を指していれば、Thunderbird はこの設定を自動で見つけます。そうでなければ上の設定を入力し、「設定」>「プライバシーとセキュリティ」>「証明書」で証明書を読み込んでください。imapwhy 経由では、Thunderbird もスマートフォンのメールアプリもパスワードでサインインします（OAuth はプロバイダ自身のサーバー名でしか使えないため）。パスワードを受け付けないアカウント（Microsoft 365、アプリパスワードのない Gmail）には、imapwhy の OAuth ブリッジをお使いください（管理者にお問い合わせください）。",

		LiveTitle:     "この端末のログイン",
		LiveWaiting:   "メールアプリのログインを待っています…設定が終わるまでこのページを開いたままにしてください。",
		LiveOK:        "%s でログインできました。",
		LiveRefused:   "%s のログインに失敗しました：",
		LiveUntrusted: "この端末はまだ imapwhy の証明書を信頼していません。上のプロファイルか証明書をインストールしてください。",
		LiveNoScript:  "新しいログインを見るにはページを再読み込みしてください。",

		LinkExpired: "この設定用リンクは期限切れです。PC の imapwhy に表示される新しいリンクを開いてください（再起動すると表示されます）。",
		NoCA:        "imapwhy は公的な認証局の証明書を使っています。端末はすでに信頼しています。",
		BadEmail:    "メールアドレスの形ではありません。name@example.com のように入力してください。",

		ProfileName:            "imapwhy: %s",
		ProfileDescription:     "%s の imapwhy を通してメールを読みます。ログインに失敗した理由を imapwhy がお知らせします。パスワードは含みません（「メール」が尋ねます）。",
		ProfileCADescription:   "証明書のフィンガープリント：%s。設定ページと imapwhy の画面に表示されるものと同じはずです。",
		ProfileMailName:        "メールアカウント",
		ProfileMailDescription: "imapwhy を通した IMAP アカウント %s",
		WebClipLabel:           "メールの状態",
		WebClipDescription:     "メールのログインに失敗した理由",
	},
}

// textFor returns the texts for a language tag; English for any other.
func textFor(lang string) *uiText { return uiTexts[incident.Language(lang)] }

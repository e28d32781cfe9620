package incident

// uiText holds the fixed words of the pages, per language.
type uiText struct {
	Lang           string
	WhyTitle       string
	WhyLead        string
	Said           string
	Temporary      string
	StepsTitle     string
	Help           string
	HelpOf         string // followed by the provider's name
	NoticeNote     string
	Expires        string // followed by a time
	Cause          string
	NotFoundTitle  string
	NotFoundText   string
	StatusTitle    string
	StatusLocal    string
	StatusGateway  string
	StatusEmpty    string
	Untrusted      string // %s: the device's address
	OpenSetup      string
	ColTime        string
	ColUser        string
	ColCause       string
	ColProvider    string
	ColCount       string
	ColMessage     string
	Details        string
	NoticeMark     string
	ByUser         string
	ByCause        string
	ByProvider     string
	ChartTitle     string
	ChartHoursAgo  string
	Unknown        string
	TooMany        string
	Unauthorized   string
	MethodRefused  string
	Footer         string
	KeptFor        string // followed by a duration
	ShownOnlyToYou string
}

var uiTexts = map[string]*uiText{
	"en": {
		Lang:           "en",
		WhyTitle:       "Why your mail app could not sign in",
		WhyLead:        "imapwhy, the mail proxy your mail app connects through, saw the mail server refuse the sign-in and worked out why.",
		Said:           "What happened",
		Temporary:      "This is temporary: trying again later can help.",
		StepsTitle:     "What to do",
		Help:           "Help page",
		HelpOf:         "Help page of",
		NoticeNote:     "Your mail app was let into a read-only notice mailbox holding one message with this explanation, so that it stops asking for the password. Your real mailbox was not touched; once the problem is fixed, the app reaches it again by itself.",
		Expires:        "This page expires at",
		Cause:          "Cause",
		NotFoundTitle:  "This page has expired",
		NotFoundText:   "Pages about a failed sign-in are kept for a short time only, or the address is wrong. Let your mail app connect again to get a new one.",
		StatusTitle:    "Recent sign-in failures",
		StatusLocal:    "Failures of mail apps on this device (the address you are viewing from), newest first.",
		StatusGateway:  "Every failure seen by this gateway, newest first.",
		StatusEmpty:    "No failed sign-ins recently.",
		Untrusted:      "The device at %s does not trust imapwhy yet: open /setup on it.",
		OpenSetup:      "Set-up page",
		ColTime:        "Time",
		ColUser:        "User",
		ColCause:       "Cause",
		ColProvider:    "Provider",
		ColCount:       "Failures",
		ColMessage:     "What the mail app was told",
		Details:        "details",
		NoticeMark:     "notice mailbox",
		ByUser:         "By user",
		ByCause:        "By cause",
		ByProvider:     "By provider",
		ChartTitle:     "Failures per hour, last 24 hours",
		ChartHoursAgo:  "hours ago",
		Unknown:        "unknown",
		TooMany:        "Too many wrong passwords; wait a minute.",
		Unauthorized:   "The status page needs the administrator's user name and password.",
		MethodRefused:  "Only GET is allowed here.",
		Footer:         "Served by imapwhy, the mail proxy between your mail app and your provider.",
		KeptFor:        "Failures are listed for",
		ShownOnlyToYou: "Only you (this address) can see this list.",
	},
	"ja": {
		Lang:           "ja",
		WhyTitle:       "メールアプリがログインできなかった理由",
		WhyLead:        "メールアプリが経由しているメールプロキシ imapwhy が、メールサーバーにログインを拒否されたことを確認し、その理由を調べました。",
		Said:           "起きたこと",
		Temporary:      "一時的な問題です。しばらくしてから試すと解決することがあります。",
		StepsTitle:     "対処方法",
		Help:           "ヘルプページ",
		HelpOf:         "ヘルプページ:",
		NoticeNote:     "パスワードを何度も求められないよう、メールアプリはこの説明のメッセージが1通だけ入った読み取り専用のお知らせメールボックスに接続しています。本来のメールボックスには何も変更していません。問題が解決すれば、アプリは自動的に本来のメールボックスに戻ります。",
		Expires:        "このページの有効期限:",
		Cause:          "原因",
		NotFoundTitle:  "このページは期限切れです",
		NotFoundText:   "ログイン失敗についてのページは短い間だけ保存されます。またはアドレスが間違っています。メールアプリにもう一度接続させると新しいページが作られます。",
		StatusTitle:    "最近のログイン失敗",
		StatusLocal:    "この端末（閲覧しているアドレス）のメールアプリのログイン失敗です。新しい順に表示します。",
		StatusGateway:  "このゲートウェイで起きたすべてのログイン失敗です。新しい順に表示します。",
		StatusEmpty:    "最近のログイン失敗はありません。",
		Untrusted:      "%s の端末はまだ imapwhy を信頼していません。その端末で /setup を開いてください。",
		OpenSetup:      "設定ページ",
		ColTime:        "時刻",
		ColUser:        "ユーザー",
		ColCause:       "原因",
		ColProvider:    "プロバイダ",
		ColCount:       "件数",
		ColMessage:     "メールアプリへの説明",
		Details:        "詳細",
		NoticeMark:     "お知らせメールボックス",
		ByUser:         "ユーザー別",
		ByCause:        "原因別",
		ByProvider:     "プロバイダ別",
		ChartTitle:     "1時間ごとの失敗件数（過去24時間）",
		ChartHoursAgo:  "時間前",
		Unknown:        "不明",
		TooMany:        "パスワードの誤りが多すぎます。1分ほど待ってください。",
		Unauthorized:   "状況ページには管理者のユーザー名とパスワードが必要です。",
		MethodRefused:  "ここではGETだけが使えます。",
		Footer:         "メールアプリとプロバイダの間にあるメールプロキシ imapwhy が表示しています。",
		KeptFor:        "ログイン失敗を表示する期間:",
		ShownOnlyToYou: "この一覧はあなた（このアドレス）にだけ表示されます。",
	},
}

// textFor returns the page words for a language.
func textFor(lang string) *uiText { return uiTexts[Language(lang)] }

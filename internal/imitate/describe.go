package imitate

// DescriptionIn is the scenario's description in lang ("ja" or "en"):
// the demo prints it in the language it speaks. English where no
// translation exists.
func (s Scenario) DescriptionIn(lang string) string {
	if lang == "ja" {
		if d, ok := descriptionsJA[s.Description]; ok {
			return d
		}
	}
	return s.Description
}

// descriptionsJA translates the scenarios' descriptions (providers.go).
var descriptionsJA = map[string]string{
	"an app signed in with Google (XOAUTH2 or OAUTHBEARER): logged in":                                                                                           "Googleでサインインしたアプリ(XOAUTH2またはOAUTHBEARER): ログイン成功",
	"the token expired, was revoked, or lacks https://mail.google.com/: the error challenge, then NO":                                                            "トークンの期限切れ・取り消し、または https://mail.google.com/ の権限なし: エラーのチャレンジの後にNO",
	"2-Step Verification is on and the app sent the Google account password":                                                                                     "2段階認証がオンなのに、アプリがGoogleアカウントのパスワードを送った",
	"the same account with an app password: logged in":                                                                                                           "同じアカウントをアプリパスワードで: ログイン成功",
	"wrong password, no 2-Step Verification (no app password possible), or a revoked app password":                                                               "パスワード違い、2段階認証オフ(アプリパスワードを作れない)、または取り消されたアプリパスワード",
	"Google's risk checks blocked the sign-in; the user must confirm it in a browser":                                                                            "Googleの安全確認がログインをブロック。ブラウザで本人確認が必要",
	"IMAP switched off in the Gmail settings (historical: the switch was removed in 2025)":                                                                       "Gmailの設定でIMAPがオフ(過去の例: この設定は2025年に廃止)",
	"a Google Workspace administrator turned IMAP off":                                                                                                           "Google Workspaceの管理者がIMAPをオフにした",
	"an app with a token for IMAP (IMAP.AccessAsUser.All): logged in":                                                                                            "IMAP用のトークン(IMAP.AccessAsUser.All)を持つアプリ: ログイン成功",
	"a token Exchange does not take (expired, for Microsoft Graph, without IMAP.AccessAsUser.All, another user's): no reason given":                              "Exchangeが受け付けないトークン(期限切れ、Microsoft Graph用、IMAP.AccessAsUser.Allなし、別ユーザーのもの): 理由は示されない",
	"the token is accepted, but its user may not open the mailbox (or IMAP is off for it): every command then gets BAD User is authenticated but not connected.": "トークンは受け付けられたが、そのユーザーはメールボックスを開けない(またはIMAPがオフ): 以後のコマンドはすべて BAD User is authenticated but not connected.",
	"the same refusal to AUTHENTICATE PLAIN":                                                                                                                     "AUTHENTICATE PLAINへの同じ拒否",
	"Microsoft no longer takes passwords over IMAP (OAuth only) and does not say so":                                                                             "MicrosoftはIMAPでパスワードを受け付けなくなった(OAuthのみ)が、そうとは言わない",
	"the newer reply that names the policy":                                                                                                                      "ポリシーを明示する新しい応答",
	"the Apple ID password; with two-factor authentication iCloud wants an app-specific password":                                                                "Apple IDのパスワード。2ファクタ認証ではiCloudはApp用パスワードを求める",
	"the same account with an app-specific password: logged in":                                                                                                  "同じアカウントをApp用パスワードで: ログイン成功",
	"the account password; Yahoo wants an app password for mail apps (or the password is wrong)":                                                                 "アカウントのパスワード。Yahooはメールアプリにアプリパスワードを求める(またはパスワード違い)",
	"right password: logged in":                                                 "正しいパスワード: ログイン成功",
	"wrong password (an unknown user gets the same)":                            "パスワード違い(存在しないユーザーも同じ応答)",
	"the administrator disabled the account (nologin, no reason given)":         "管理者がアカウントを停止(nologin、理由なし)",
	"the administrator disabled the account and gave a reason":                  "管理者がアカウントを停止し、理由を示した",
	"the password expired and must be changed":                                  "パスワードの有効期限が切れ、変更が必要",
	"the password database is down; try again later":                            "パスワードのデータベースが停止中。後で再試行",
	"too many connections from this user and address":                           "このユーザーとアドレスからの接続が多すぎる",
	"the IMAP-only password (IMAP専用パスワード): logged in":                           "IMAP専用パスワード: ログイン成功",
	"the IMAP-only password with a trailing space (as some keyboards add)":      "末尾に空白の付いたIMAP専用パスワード(一部のキーボードが付ける)",
	"the IMAP-only password typed in full-width characters (Japanese input on)": "全角で入力したIMAP専用パスワード(日本語入力オン)",
	"the d ACCOUNT password (dアカウント) instead of the IMAP-only password":         "IMAP専用パスワードではなくdアカウントのパスワード",
	"the QQ password; mail apps need the authorization code (授权码)":              "QQのパスワード。メールアプリには授权码(認証コード)が必要",
	"the same account with its authorization code: logged in":                   "同じアカウントを授权码(認証コード)で: ログイン成功",
	"the web mail password; mail apps need the authorization code (授权码)":        "ウェブメールのパスワード。メールアプリには授权码(認証コード)が必要",
}

package check

// The step lines (Step.Summary and the "server said" details) in the
// report's language. Steps are written in English as format strings;
// stepTexts maps each to its wording in another language, with the same
// verbs in the same order (or indexed, %[2]s). A format missing here stays
// English: a test checks that every step line of a Japanese check is
// Japanese.

import "fmt"

// t renders a step text in the report's language.
func (r *runner) t(format string, args ...any) string {
	if s, ok := stepTexts[r.opts.Lang][format]; ok {
		format = s
	}
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

var stepTexts = map[string]map[string]string{
	"ja": {
		"%s, given with --server":      "%s(--server で指定)",
		"%s, found in %s":              "%s(%s で見つかりました)",
		"%s port %d, %s":               "%s のポート %d、%s",
		"SSL/TLS":                      "SSL/TLS",
		"STARTTLS":                     "STARTTLS",
		"no encryption":                "暗号化なし",
		"the built-in provider list":   "組み込みのプロバイダ一覧",
		"the domain's autoconfig file": "ドメインの autoconfig ファイル",
		"DNS SRV records":              "DNS の SRV レコード",
		"the domain's MX records":      "ドメインの MX レコード",
		"not an email address: give the whole address, or the server with --server": "メールアドレスではありません。アドレス全体か、--server でサーバーを指定してください",
		"no IMAP server known for this domain: give it with --server":               "このドメインの IMAP サーバーが分かりません。--server で指定してください",
		"refused: what was found points to a private or local address":              "拒否: 見つかったサーバーはプライベートまたはローカルのアドレスです",
		"this domain is not allowed":                                                "このドメインは許可されていません",
		"discovery did not finish: %s":                                              "サーバーの検索が終わりませんでした: %s",
		"the server found for this address is on a private or local network address; not checked (give it with --server to check it anyway)": "このアドレスのサーバーはプライベートまたはローカルのネットワークにあるため確認しません(確認するには --server で指定してください)",
		"%s does not exist in DNS": "%s は DNS に存在しません",
		"DNS is not answering, so %s could not be looked up (the name may be fine)": "DNS が応答しないため %s を調べられませんでした(名前は正しい可能性があります)",
		"the DNS lookup of %s failed":                               "%s の DNS 検索に失敗しました",
		"%s is %s":                                                  "%s は %s",
		"%s is an IP address: nothing to look up":                   "%s は IP アドレスです(検索不要)",
		"connected to %s":                                           "%s に接続しました",
		"no connection to port %d: %s":                              "ポート %d に接続できません: %s",
		"connection refused (nothing listens on that port)":         "接続拒否(そのポートでは何も待ち受けていません)",
		"no answer (timed out; a firewall may drop the connection)": "応答なし(タイムアウト。ファイアウォールが接続を落としている可能性があります)",
		"%s, certificate valid for %s":                              "%s、証明書は %s で有効",
		"%s answered in plaintext: this is not an IMAP port":        "%s が暗号化なしで応答しました。IMAP のポートではありません",
		"the server answered in plaintext: this port does not use SSL/TLS (STARTTLS, port 143?)": "サーバーが暗号化なしで応答しました。このポートは SSL/TLS ではありません(STARTTLS、ポート 143?)",
		"the certificate is not valid for %s":                                                    "証明書は %s では有効ではありません",
		"the certificate has expired (or is not valid yet)":                                      "証明書の有効期限が切れています(またはまだ有効ではありません)",
		"the certificate is not signed by a trusted authority (trust its CA with --ca-file)":     "証明書が信頼された認証局の署名ではありません(--ca-file でその CA を信頼できます)",
		"no TLS answer in time":                                 "時間内に TLS の応答がありません",
		"the server closed the connection during the handshake": "ハンドシェイク中にサーバーが接続を閉じました",
		"the TLS handshake failed":                              "TLS のハンドシェイクに失敗しました",
		"off (--tls none): anything sent, the password too, crosses the network unencrypted": "オフ(--tls none): パスワードも含め、送るものはすべて暗号化されずにネットワークを通ります",
		"an SMTP server":                    "SMTP サーバー",
		"a server of another protocol":      "別のプロトコルのサーバー",
		"a %s server":                       "%s サーバー",
		"%s answered, not IMAP":             "IMAP ではなく%sが応答しました",
		"the server refused the connection": "サーバーが接続を拒否しました",
		"PREAUTH: logged in before any password; a login cannot be checked":    "PREAUTH: パスワードなしでログイン済みのため、ログインは確認できません",
		"the greeting is not OK, PREAUTH or BYE":                               "最初の応答が OK、PREAUTH、BYE のいずれでもありません",
		"an IMAP server (not one imapwhy recognises)":                          "IMAP サーバー(imapwhy の知らないもの)",
		"%s (server software)":                                                 "%s(サーバーソフトウェア)",
		"%s (mail provider)":                                                   "%s(メールプロバイダ)",
		"the port speaks SSL/TLS, but %s was chosen (SSL/TLS, port 993?)":      "このポートは SSL/TLS ですが、%s が選ばれています(SSL/TLS、ポート 993?)",
		"no greeting in time":                                                  "時間内に最初の応答がありません",
		"the server closed the connection without a greeting":                  "サーバーが最初の応答なしに接続を閉じました",
		"no greeting: %s":                                                      "最初の応答がありません: %s",
		"CAPABILITY failed":                                                    "CAPABILITY に失敗しました",
		"offered and accepted":                                                 "提供され、受け付けられました",
		"the server does not offer STARTTLS on this port (SSL/TLS, port 993?)": "このポートでは STARTTLS が提供されていません(SSL/TLS、ポート 993?)",
		"the server refused STARTTLS":                                          "サーバーが STARTTLS を拒否しました",
		"the server sent data after its STARTTLS OK, before TLS: stopped (command injection?)": "STARTTLS の OK の後、TLS の前にサーバーがデータを送ったため中止しました(コマンド注入?)",
		"no answer to STARTTLS": "STARTTLS に応答がありません",
		"LOGINDISABLED: the server takes no password on this connection": "LOGINDISABLED: この接続ではサーバーがパスワードを受け付けません",
		"login methods: %s":     "ログイン方法: %s",
		"capabilities (%s): %s": "機能(%s): %s",
		"capabilities: %s":      "機能: %s",
		"from the greeting":     "挨拶の行から",
		"from CAPABILITY":       "CAPABILITY コマンドから",
		"server: %s":            "サーバー: %s",
		"user name: %s":         "ユーザー名: %s",
		"the password will not be sent: the server is not on this machine":                 "パスワードは送信しません: サーバーがこのマシン上にありません",
		"not tried: the server takes no password on this connection (LOGINDISABLED)":       "未実行: この接続ではサーバーがパスワードを受け付けません(LOGINDISABLED)",
		"not tried: the connection is not encrypted and the server is not on this machine": "未実行: 接続が暗号化されておらず、サーバーはこのコンピューター上にありません",
		"not tried: the password contains a line break or NUL, which IMAP cannot carry":    "未実行: パスワードに IMAP で送れない改行または NUL が含まれています",
		"imapwhy let the login into its notice mailbox: the real server refused it":        "imapwhy がお知らせ用メールボックスにログインさせました。本当のサーバーは拒否しています",
		"the server refused the login":          "サーバーがログインを拒否しました",
		"no answer to the login":                "ログインに応答がありません",
		"logged in as %s (%s)":                  "%s としてログインしました(%s)",
		"INBOX could not be opened":             "受信箱 (INBOX) を開けませんでした",
		"INBOX has %d message%s":                "受信箱 (INBOX) のメッセージは %d 件%.0s",
		"LOGOUT failed: %s":                     "LOGOUT に失敗しました: %s",
		"logged out":                            "ログアウトしました",
		"not run: the %s step failed":           "未実行: %s の段階で失敗したため",
		"server said: %s":                       "サーバーの応答: %s",
		"imapwhy answered: its diagnosis is %s": "imapwhy の応答: 診断は %s",
	},
}

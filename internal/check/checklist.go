package check

// The classic support checklist, answered from what the steps saw: was
// the password typed correctly, is the server name right, is the port
// right, is SSL/TLS on.

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
)

// Checklist item IDs, in the order a support person asks.
const (
	ItemPassword   = "password"
	ItemServerName = "server_name"
	ItemPort       = "port"
	ItemTLS        = "tls"
)

// checklist answers every item.
func (r *runner) checklist() []ChecklistItem {
	items := []struct {
		id     string
		answer func() (Status, string, []any)
	}{
		{ItemPassword, r.passwordAnswer},
		{ItemServerName, r.serverNameAnswer},
		{ItemPort, r.portAnswer},
		{ItemTLS, r.tlsAnswer},
	}
	out := make([]ChecklistItem, 0, len(items))
	for _, it := range items {
		status, key, args := it.answer()
		out = append(out, ChecklistItem{
			ID:       it.id,
			Question: phrase(r.opts.Lang, "q."+it.id),
			Status:   status,
			Answer:   fmt.Sprintf(phrase(r.opts.Lang, key), args...),
		})
	}
	return out
}

// passwordAnswer: what was typed (Facts), and what the server made of it.
func (r *runner) passwordAnswer() (Status, string, []any) {
	t := r.obs.Typed
	login := r.stepStatus(StepLogin)
	if login == StatusOK {
		return StatusOK, "password.accepted", nil
	}
	typo := ""
	switch {
	case t.PasswordEmpty:
		return StatusFailed, "password.empty", nil
	case t.PasswordSurroundingSpace:
		typo = "password.space"
	case t.PasswordFullwidth:
		typo = "password.fullwidth"
	case t.PasswordNonASCII:
		typo = "password.non_ascii"
	}
	tried := login == StatusFailed && r.obs.Reply != nil
	switch {
	case typo != "" && tried:
		return StatusFailed, typo, nil
	case typo != "":
		return StatusWarning, typo, nil
	case !tried:
		return StatusSkipped, "password.not_tried", nil
	}
	if d := r.report.Diagnosis; d != nil && !credentialsCause(d.Cause) {
		return StatusWarning, "password.see_diagnosis", nil
	}
	return StatusFailed, "password.refused", nil
}

// credentialsCause: a diagnosis that the password itself may be wrong.
func credentialsCause(c diagnose.Cause) bool {
	switch c {
	case diagnose.CauseCredentialsRejected, diagnose.CauseCredentialsCapsLock,
		diagnose.CauseCredentialsPasswordChanged, diagnose.CauseCredentialsRepeatedFailure:
		return true
	}
	return strings.HasPrefix(string(c), "password.")
}

// serverNameAnswer: DNS, then the certificate's names.
func (r *runner) serverNameAnswer() (Status, string, []any) {
	host := r.shown(r.host)
	where := fmt.Sprintf(phrase(r.opts.Lang, "name.is"), host, strings.Join(r.report.Server.Addresses, ", "))
	if _, err := netip.ParseAddr(r.host); err == nil {
		where = fmt.Sprintf(phrase(r.opts.Lang, "name.is_ip"), host)
	}
	switch r.stepStatus(StepDNS) {
	case StatusOK:
	case StatusFailed:
		switch r.obs.NetError {
		case diagnose.NetDNSNotFound:
			return StatusFailed, "name.no_dns", []any{host}
		case diagnose.NetDNSUnavailable:
			return StatusWarning, "name.dns_not_answering", []any{host}
		}
		return StatusWarning, "name.dns_failed", []any{host}
	default:
		return StatusSkipped, "name.unknown", nil
	}
	switch t := r.report.TLS; {
	case r.mode == config.TLSNone:
		return StatusOK, "name.resolves_plain", []any{where}
	case t == nil:
		return StatusWarning, "name.resolves_unchecked", []any{where}
	case t.Verified:
		return StatusOK, "name.cert_ok", []any{where}
	case !t.NameMatches:
		return StatusFailed, "name.cert_mismatch", []any{host, r.shown(strings.Join(t.Names, ", "))}
	}
	return StatusOK, "name.cert_name_only", []any{where}
}

// portAnswer: did an IMAP server answer on the port, in the mode chosen?
func (r *runner) portAnswer() (Status, string, []any) {
	port := r.port
	switch r.stepStatus(StepTCP) {
	case StatusOK, StatusWarning:
	case StatusFailed:
		if r.obs.NetError == diagnose.NetRefused {
			return StatusFailed, "port.refused", []any{port}
		}
		return StatusFailed, "port.timeout", []any{port}
	default:
		return StatusSkipped, "port.unknown", nil
	}
	switch {
	case r.obs.NotIMAP != "":
		return StatusFailed, "port.not_imap", []any{port, r.protocolServer(r.obs.NotIMAP), protocolName(r.obs.NotIMAP)}
	case r.tlsMismatch():
		return StatusFailed, "port.mismatch", []any{port}
	case port == defaultPort(r.mode):
		return StatusOK, "port.usual", []any{port, modeName(r.mode)}
	}
	return StatusOK, "port.unusual", []any{port}
}

// tlsMismatch reports a TLS mode that does not fit the port.
func (r *runner) tlsMismatch() bool {
	switch r.obs.NetError {
	case diagnose.NetTLSToPlain, diagnose.NetPlainToTLS:
		return true
	}
	return r.noStartTLS
}

// tlsAnswer: is the connection encrypted, and properly?
func (r *runner) tlsAnswer() (Status, string, []any) {
	if r.mode == config.TLSNone && r.stepStatus(StepTLS) != "" && r.stepStatus(StepTLS) != StatusSkipped {
		return StatusWarning, "tls.off", nil
	}
	switch r.obs.NetError {
	case diagnose.NetTLSToPlain:
		return StatusFailed, "tls.mismatch_plain", nil
	case diagnose.NetPlainToTLS:
		return StatusFailed, "tls.mismatch_tls", nil
	case diagnose.NetCertUntrusted:
		return StatusFailed, "tls.cert_untrusted", nil
	case diagnose.NetCertExpired:
		return StatusFailed, "tls.cert_expired", nil
	case diagnose.NetCertName:
		return StatusFailed, "tls.cert_name", nil
	}
	if r.noStartTLS {
		return StatusFailed, "tls.no_starttls", nil
	}
	switch r.stepStatus(StepTLS) {
	case StatusOK:
		if r.mode == config.TLSStartTLS {
			return StatusOK, "tls.starttls", []any{r.report.TLS.Version}
		}
		return StatusOK, "tls.implicit", []any{r.report.TLS.Version}
	case StatusFailed:
		return StatusFailed, "tls.failed", nil
	}
	return StatusSkipped, "tls.unknown", nil
}

// phrase is the text for key in lang (English when lang has none).
func phrase(lang, key string) string {
	if s, ok := phrases[lang][key]; ok {
		return s
	}
	return phrases["en"][key]
}

// phrases are the checklist's questions and answers and the printer's
// headings, in each language. Arguments are host names, addresses, ports,
// TLS versions and protocol names; a language may skip or reorder them
// with indexed verbs (%[2]s).
var phrases = map[string]map[string]string{
	"en": {
		"q." + ItemPassword:   "Password typed correctly?",
		"q." + ItemServerName: "Server name right?",
		"q." + ItemPort:       "Port right?",
		"q." + ItemTLS:        "SSL/TLS on?",

		"password.accepted":       "Yes: the server accepted it.",
		"password.empty":          "No: no password was entered.",
		"password.space":          "Check it: it starts or ends with a space (often from copy and paste).",
		"password.fullwidth":      "Check it: it has full-width characters (Japanese input was on).",
		"password.non_ascii":      "Check it: it has characters such as kana or accented letters.",
		"password.refused":        "Maybe not: the server refused it. Retype it, minding Caps Lock and the input mode.",
		"password.see_diagnosis":  "The login failed for another reason: see the diagnosis.",
		"password.not_tried":      "Not checked: the login did not run.",
		"name.no_dns":             "No: %s does not exist in DNS. Check the spelling.",
		"name.dns_failed":         "Unknown: the DNS lookup of %s failed.",
		"name.dns_not_answering":  "Unknown: DNS is not answering, so %s could not be looked up. The name may be fine; check the internet connection.",
		"name.is":                 "%s is %s",
		"name.is_ip":              "%s is an IP address",
		"name.cert_ok":            "Yes: %s, and the server's certificate is valid for that name.",
		"name.cert_mismatch":      "No: %s exists, but the server's certificate is for %s. Use one of those names.",
		"name.cert_name_only":     "Yes: %s, and the certificate carries that name (but see SSL/TLS).",
		"name.resolves_plain":     "Yes: %s (no certificate to compare: no encryption).",
		"name.resolves_unchecked": "%s; the certificate could not be checked.",
		"name.unknown":            "Not checked: no server was found.",
		"port.usual":              "Yes: %d, the usual port for %s.",
		"port.unusual":            "Port %d answers here; the usual ports are 993 for SSL/TLS and 143 for STARTTLS.",
		"port.refused":            "No: nothing answers on port %d (connection refused).",
		"port.timeout":            "No answer on port %d (timed out: a firewall, or the wrong port).",
		"port.not_imap":           "No: port %[1]d belongs to %[2]s, not IMAP. Use 993 with SSL/TLS.",
		"port.mismatch":           "Port %d does not match the SSL/TLS setting: use 993 with SSL/TLS, or 143 with STARTTLS.",
		"port.unknown":            "Not checked: no connection was made.",
		"tls.implicit":            "Yes: SSL/TLS (%s) from the start.",
		"tls.starttls":            "Yes: STARTTLS, then %s.",
		"tls.off":                 "No: the connection is not encrypted (--tls none).",
		"tls.mismatch_plain":      "No: this port answers without encryption. With SSL/TLS on use port 993; for port 143 choose STARTTLS.",
		"tls.mismatch_tls":        "This port is SSL/TLS only, but STARTTLS was chosen: turn SSL/TLS on (port 993).",
		"tls.no_starttls":         "No: the server offers no STARTTLS on this port. Use SSL/TLS on port 993.",
		"tls.cert_untrusted":      "On, but the server's certificate is not trusted.",
		"tls.cert_expired":        "On, but the server's certificate has expired.",
		"tls.cert_name":           "On, but the certificate is for another name (see Server name).",
		"tls.failed":              "The TLS handshake failed.",
		"tls.unknown":             "Not checked: no connection was made.",

		"heading.checklist":  "Checklist",
		"heading.result":     "Result",
		"heading.diagnosis":  "Diagnosis",
		"heading.confidence": "confidence",
		"confidence.high":    "high",
		"confidence.medium":  "medium",
		"confidence.low":     "low",
		"heading.help":       "Help",
		"result.ok":          "OK: the login and INBOX work.",
		"result.failed":      "FAILED at the %s step.",
		"result.error":       "Nothing was checked: %s",
	},
	"ja": {
		"q." + ItemPassword:   "パスワードは正しく入力されているか",
		"q." + ItemServerName: "サーバー名は正しいか",
		"q." + ItemPort:       "ポート番号は正しいか",
		"q." + ItemTLS:        "SSL/TLS はオンか",

		"password.accepted":       "はい: サーバーが受け付けました。",
		"password.empty":          "いいえ: パスワードが入力されていません。",
		"password.space":          "要確認: パスワードの前後に空白があります(コピー&ペーストでよく起こります)。",
		"password.fullwidth":      "要確認: 全角文字が含まれています(日本語入力がオンのままです)。",
		"password.non_ascii":      "要確認: かなやアクセント付きの文字などが含まれています。",
		"password.refused":        "違う可能性があります: サーバーが拒否しました。Caps Lock と入力モードに注意して入力し直してください。",
		"password.see_diagnosis":  "パスワード以外の理由でログインできませんでした(診断を参照)。",
		"password.not_tried":      "未確認: ログインまで進みませんでした。",
		"name.no_dns":             "いいえ: %s は DNS に存在しません。つづりを確認してください。",
		"name.dns_failed":         "不明: %s の DNS 検索に失敗しました。",
		"name.dns_not_answering":  "不明: DNS が応答しないため %s を調べられませんでした。名前は正しい可能性があります。インターネット接続を確認してください。",
		"name.is":                 "%s は %s",
		"name.is_ip":              "%s は IP アドレス",
		"name.cert_ok":            "はい: %sで、サーバー証明書もこの名前で有効です。",
		"name.cert_mismatch":      "いいえ: %s は存在しますが、サーバー証明書は %s 用です。そのいずれかの名前を使ってください。",
		"name.cert_name_only":     "はい: %sで、証明書にもこの名前があります(ただし SSL/TLS の項目を参照)。",
		"name.resolves_plain":     "はい: %sです(暗号化なしのため証明書はありません)。",
		"name.resolves_unchecked": "%sですが、証明書は確認できませんでした。",
		"name.unknown":            "未確認: サーバーが決まりませんでした。",
		"port.usual":              "はい: %d は %s の標準のポートです。",
		"port.unusual":            "ポート %d で応答があります。標準のポートは SSL/TLS なら 993、STARTTLS なら 143 です。",
		"port.refused":            "いいえ: ポート %d では何も応答しません(接続拒否)。",
		"port.timeout":            "応答がありません: ポート %d への接続がタイムアウトしました(ファイアウォールか、ポート番号の誤り)。",
		"port.not_imap":           "いいえ: ポート %[1]d は IMAP ではなく %[3]s のポートです。SSL/TLS で 993 を使ってください。",
		"port.mismatch":           "ポート %d と SSL/TLS の設定が合っていません。SSL/TLS なら 993、STARTTLS なら 143 を使ってください。",
		"port.unknown":            "未確認: 接続まで進みませんでした。",
		"tls.implicit":            "はい: 接続の最初から SSL/TLS (%s) です。",
		"tls.starttls":            "はい: STARTTLS で %s になりました。",
		"tls.off":                 "いいえ: 接続は暗号化されていません(--tls none)。",
		"tls.mismatch_plain":      "いいえ: このポートは暗号化なしで応答します。SSL/TLS をオンにするならポート 993、ポート 143 なら STARTTLS を選んでください。",
		"tls.mismatch_tls":        "このポートは SSL/TLS 専用ですが、STARTTLS が選ばれています。SSL/TLS をオンにしてください(ポート 993)。",
		"tls.no_starttls":         "いいえ: このポートでは STARTTLS が使えません。SSL/TLS でポート 993 を使ってください。",
		"tls.cert_untrusted":      "オンですが、サーバー証明書が信頼されていません。",
		"tls.cert_expired":        "オンですが、サーバー証明書の有効期限が切れています。",
		"tls.cert_name":           "オンですが、証明書が別の名前用です(サーバー名の項目を参照)。",
		"tls.failed":              "TLS の接続に失敗しました。",
		"tls.unknown":             "未確認: 接続まで進みませんでした。",

		"heading.checklist":  "チェックリスト",
		"heading.result":     "結果",
		"heading.diagnosis":  "診断",
		"heading.confidence": "確度",
		"confidence.high":    "高",
		"confidence.medium":  "中",
		"confidence.low":     "低",
		"heading.help":       "ヘルプ",
		"result.ok":          "OK: ログインと受信箱 (INBOX) の確認ができました。",
		"result.failed":      "%s の段階で失敗しました。",
		"result.error":       "何も確認していません: %s",
	},
}

package diagnose

import (
	"regexp"
	"strings"
)

// phraseRule recognises a cause from the wording of a server's text, for
// any server. Providers change their wording, so the patterns match loosely
// and cover texts not seen in the corpus. They run on lower-cased text.
type phraseRule struct {
	cause      Cause
	confidence Confidence
	keywords   []string // cheap prefilter: the text must contain one of them
	re         *regexp.Regexp
}

// phraseRules are tried in order; the first match wins. A loose match
// is at most Medium: only a response code or a provider's known text
// makes a diagnosis High. More specific
// causes come first: a rate limit reported as a "temporary authentication
// failure" is a lock, a "temporarily restricted" account that "may have been
// hacked" wants a sign-in in a browser.
var phraseRules = []phraseRule{
	{CauseProviderAppPasswordRequired, Medium,
		[]string{"pass", "parol", "пароль", "パスワード", "185833", "authori", "授权码", "授權碼", "비밀번호", "weixin", "mot de passe"},
		regexp.MustCompile(`\bapp(lication|s)?[- ]?(specific[- ])?passwords?\b|answer/185833|parol[a-z]* prilozheniya|пароль (для )?(внешнего )?приложени|アプリ(ケーション)?(固有の?|専用)?パスワード|imap専用パスワード|authori[sz](ed|ation) code|授权码|授權碼|客户端(专用|授权)密码|(애플리케이션|앱) 비밀번호|weixin token|anwendungspasswort|app-passwort|mot de passe (d'|d’)application`)},
	{CauseProviderClientIDRequired, Medium,
		[]string{"unsafe login"},
		regexp.MustCompile(`unsafe login`)},
	{CausePolicyAddressBlocked, Medium,
		[]string{"country", "region", "location", "geo", "network", "not allowed from", "denied from", "blocked from"},
		regexp.MustCompile(`(log ?ins?|sign[- ]?ins?|access|connections?|logins) (are |is )?(not allowed|denied|blocked|refused|prohibited) from (your |this )?(country|region|location|network|ip|address)|(your |this )?(country|region|location) (is )?(blocked|not allowed|not permitted|restricted)|geo-?(ip )?block`)},
	{CauseProviderWebLoginRequired, Medium,
		[]string{"web", "browser", "verify", "suspic", "unusual", "hack", "78754"},
		regexp.MustCompile(`log ?in (via|with|using|through) (your|a) (web ?)?browser|web ?login required|sign ?in (once )?(via|with|using|in|from) (your|a) (web ?)?browser|verify (your|it'?s|that it'?s) (identity|account|you)|suspicious|unusual (activity|sign[- ]?in|log ?in)|suspects? .{0,40}hack|answer/78754`)},
	{CauseProviderOAuthRequired, Medium,
		[]string{"basic", "oauth", "modern auth"},
		regexp.MustCompile(`basic ?auth(entication)?\W*(is |has been )?(disabled|blocked|turned off|switched off|not (supported|allowed|permitted|available))|basicauthblocked|(use|requires?|only|must use) (oauth|modern auth)`)},
	{CauseProviderIMAPDisabled, Medium,
		[]string{"imap"},
		regexp.MustCompile(`not enabled for imap|imap (access |protocol |service )?(is |has been )?(disabled|not enabled|turned off|switched off|not allowed|not permitted|deactivated|off)\b|(enable|turn on|activate|switch on|allow) (the )?imap\b|yet to enable imap|imap.{0,20}(無効|利用できません|許可されていません|オフ|未开启|未开通|未启用|没有开启|사용 안|사용하지 않)`)},
	{CauseAccountPasswordExpired, Medium,
		[]string{"expire", "change", "期限"},
		regexp.MustCompile(`password (has )?expired|expired password|password (must|needs to|has to) be (changed|reset|renewed)|must (change|reset|renew) (your |the )?password|パスワード.{0,10}(有効期限|期限切れ)`)},
	{CauseAccountTooManyConnections, Medium,
		[]string{"connection", "session", "userip", "接続"},
		regexp.MustCompile(`too many (simultaneous |concurrent |open |parallel |active )?(connections|sessions)|maximum number of (simultaneous |concurrent |open )?(connections|sessions)|connection limit|mail_max_userip_connections|同時接続`)},
	{CauseAccountLocked, Medium,
		[]string{"too many", "temporar", "lock", "rate", "throttl", "exceeded", "ban", "block", "try again in", "reached", "ロック"},
		regexp.MustCompile(`too many (failed |invalid |bad |unsuccessful |wrong )?(login|logon|authentication|auth|sign[- ]?in|password)s?( attempts| failures| tries| errors)?\b|temporar(il)?y (locked|restricted|blocked|suspended|disabled)|account (is |has been )?(temporarily )?(locked|blocked)|rate[- ]?limit|throttl|exceeded (the |your )?(command|bandwidth|login|request|download) limits?|command or bandwidth limit|(ip|address|host|client) (is |has been )?(banned|blocked|blacklisted)|try again in \d+|(reached|exceeded) (the |your |a )?(per[- ][0-9a-z -]{1,20})?limit (for|of|on) (logins|log ?ins|authentications|sign[- ]?ins)|ロック`)},
	{CauseAccountDisabled, Medium,
		[]string{"disabled", "suspend", "deactivat", "closed", "terminat", "expired", "停止", "無効"},
		regexp.MustCompile(`account (is |has been )?(disabled|suspended|deactivated|closed|terminated|expired)|login (is )?disabled for this user|user (is |has been )?(disabled|suspended)|(mailbox|subscription|contract) (has )?(expired|been disabled|been suspended)|アカウント.{0,10}(停止|無効)`)},
	{CauseServerPrivacyRequired, Medium,
		[]string{"ssl", "tls", "encrypt", "plaintext", "cleartext", "plain text", "secur", "logindisabled", "privacy"},
		regexp.MustCompile(`(ssl|tls)[/ -]*(tls[/ -]*)?(connection |encryption )?(is )?required|starttls (is )?required|(plaintext|cleartext|plain[- ]text|unencrypted) (authentication|auth|login|password)s? (is |are )?(disallowed|disabled|not allowed|not permitted|refused)|requires? (an? )?(ssl|tls|secure|encrypted) (connection|channel|layer)|security layer|logindisabled|connection offers no privacy|non-secure \(ssl/tls\)`)},
	{CauseAuthorizationFailed, Medium,
		[]string{"authori", "not connected", "mailbox", "admin"},
		regexp.MustCompile(`authenticated but not connected|authorization (failed|denied)|no such authorization|not (authorized|permitted|allowed) to (access|open|use) (this |that |the )?mailbox|is not an admin`)},
	{CauseServerReferral, Medium,
		[]string{"host", "server"},
		regexp.MustCompile(`wrong host|try this server|(lives|is located|resides) on (another|a different) server`)},
	{CauseUpstreamTLSMismatch, Medium,
		[]string{"invalid"},
		regexp.MustCompile(`too many invalid (imap )?commands`)},
	{CauseServerNoUsableMechanism, Medium,
		[]string{"mechanism"},
		regexp.MustCompile(`(unsupported|unknown|invalid|unavailable) (authentication |sasl )?mechanism|no (supported|usable|common) (authentication |sasl )?mechanism`)},
	{CauseServerTemporaryFailure, Medium,
		[]string{"temporar", "error", "mainten", "try again", "unavailable", "backend", "database", "later", "failed", "failure"},
		regexp.MustCompile(`temporar(y|ily) (authentication |system |server |internal )?(failure|error|problem|unavailable)|(internal|fatal|system|server|backend) error|maintenance|try again later|(backend|database|directory|ldap|auth(entication)? server) (failure|error|is down|down|unavailable|not available)|(service|server|account|backend|mailbox) (is )?(temporarily )?(unavailable|not available)|internal login failure|initiali[sz]ation failed`)},
}

// credentialsOrRE finds texts that name a credential problem and something
// else in one breath ("invalid credentials or IMAP is disabled"): the other
// cause is then only a possibility.
var credentialsOrRE = regexp.MustCompile(`(invalid|incorrect|wrong|bad) (credentials|password|user ?name|login)\W+or\b`)

// matchPhrase returns the verdict of the first rule that matches text.
func matchPhrase(text string) (verdict, bool) {
	if text == "" {
		return verdict{}, false
	}
	lower := strings.ToLower(text)
	for i := range phraseRules {
		r := &phraseRules[i]
		if !containsAny(lower, r.keywords) || !r.re.MatchString(lower) {
			continue
		}
		v := verdict{cause: r.cause, confidence: r.confidence}
		if credentialsOrRE.MatchString(lower) {
			v.confidence = Low
			v.alternative = CauseCredentialsRejected
		}
		return v, true
	}
	return verdict{}, false
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// loginOKRE recognises the tagged OK of a successful login when the
// transcript does not show which command it answers.
var loginOKRE = regexp.MustCompile(`(?i)\blogged in\b|\bauthenticated \(success\)|\b(login|logon|authenticate|authentication) (completed|ok|successful|succeeded)\b`)

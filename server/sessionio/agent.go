package sessionio

import "strings"

// maxAgentLen bounds how much of a User-Agent AgentName reads: every token
// it looks for comes early, and a header of any length costs the same.
const maxAgentLen = 512

// AgentName is a coarse, human name for a User-Agent header: "Firefox on
// Linux", "Safari on iOS", "Chrome" when the system is unknown, "Browser on
// Windows" when the browser is, and "Unknown device" when neither is. It
// only ever returns one of the names of its own table, never a part of ua,
// so its result is safe to show.
//
// It is a small table of our own rather than a full parser: the coarse
// name needs a dozen tokens, and the well-kept parser served by the Go
// proxy (medama-io/go-useragent v1.2.5) costs 5 MiB of heap and 130 ms to
// build per process for it.
func AgentName(ua string) string {
	if len(ua) > maxAgentLen {
		ua = ua[:maxAgentLen]
	}
	browser := firstMatch(ua, browsers)
	system := firstMatch(ua, systems)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "Browser on " + system
	default:
		return "Unknown device"
	}
}

// agentToken names what a User-Agent holding any of its tokens is.
type agentToken struct {
	name   string
	tokens []string
}

// browsers, in the order they are tried: the browsers built on Chromium
// name Chrome (and Safari) too, and Chrome names Safari, so each comes
// before those it mentions.
var browsers = []agentToken{
	{"Edge", []string{"Edg/", "EdgA/", "EdgiOS/", "Edge/"}},
	{"Opera", []string{"OPR/", "OPiOS/", "Opera"}},
	{"Samsung Internet", []string{"SamsungBrowser/"}},
	{"Vivaldi", []string{"Vivaldi/"}},
	{"Firefox", []string{"Firefox/", "FxiOS/"}},
	{"Headless Chrome", []string{"HeadlessChrome/"}},
	{"Chromium", []string{"Chromium/"}},
	{"Chrome", []string{"Chrome/", "CriOS/"}},
	{"Safari", []string{"Safari/"}},
}

// systems, in the order they are tried: Android names Linux, the iPad
// names Mac OS X in some versions, ChromeOS names Linux in others.
var systems = []agentToken{
	{"Windows", []string{"Windows"}},
	{"Android", []string{"Android"}},
	{"iPadOS", []string{"iPad"}},
	{"iOS", []string{"iPhone", "iPod"}},
	{"ChromeOS", []string{"CrOS"}},
	{"macOS", []string{"Macintosh", "Mac OS X"}},
	{"Linux", []string{"Linux", "X11"}},
}

func firstMatch(ua string, table []agentToken) string {
	for _, t := range table {
		for _, tok := range t.tokens {
			if strings.Contains(ua, tok) {
				return t.name
			}
		}
	}
	return ""
}

package webclient

import "github.com/maxence-charriere/go-app/v10/pkg/app"

// statusBar shows the connection status and the transport in use.
type statusBar struct {
	app.Compo

	Status    connStatus
	Transport string
}

func newStatusBar(status connStatus, transport string) *statusBar {
	return &statusBar{Status: status, Transport: transport}
}

func (b *statusBar) Render() app.UI {
	return app.Div().Class("status-bar").Body(
		app.Span().Class("pill", "status", "status-"+statusClass(b.Status)).Body(
			app.Span().Class("dot").Aria("hidden", "true"),
			app.Span().DataSet("testid", "status").Text(string(b.Status)),
		),
		app.Span().Class("pill", "transport").Class(transportClass(b.Status)).Title("Socket.IO transport").Body(
			app.Span().Class("muted").Text("via "),
			app.Span().DataSet("testid", "transport").Text(b.Transport),
		),
	)
}

// transportClass dims the transport while the socket is not connected: it
// is then the last one used.
func transportClass(s connStatus) string {
	if s == statusConnected {
		return ""
	}
	return "stale"
}

// statusClass is a CSS-friendly name of s.
func statusClass(s connStatus) string {
	if s == statusLoggedOut {
		return "logged-out"
	}
	return string(s)
}

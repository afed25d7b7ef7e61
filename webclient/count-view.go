package webclient

import (
	"strconv"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// countView shows the session's count and where it came from.
type countView struct {
	app.Compo

	Known  bool
	Count  int
	Source string
}

func newCountView(c counter) *countView {
	return &countView{Known: c.known, Count: c.value, Source: c.source}
}

func (v *countView) Render() app.UI {
	value := "–"
	if v.Known {
		value = strconv.Itoa(v.Count)
	}
	source := v.Source
	if source == "" {
		source = "waiting for the server"
	}
	return app.Section().Class("count").Aria("live", "polite").Body(
		app.Div().Class("count-label").ID("count-label").Text("Session count"),
		app.Div().Class("count-value").Class(unknownClass(v.Known)).DataSet("testid", "count").Aria("labelledby", "count-label").Text(value),
		app.Div().Class("count-source").Text(source),
	)
}

func unknownClass(known bool) string {
	if known {
		return ""
	}
	return "unknown"
}

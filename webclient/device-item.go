package webclient

import (
	"strconv"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// deviceItem is one device of the list: its agent, its open tabs, when it
// was last seen, and a button that signs it out.
type deviceItem struct {
	app.Compo

	Device shared.Device
	Now    time.Time
}

func newDeviceItem(d shared.Device, now time.Time) *deviceItem {
	return &deviceItem{Device: d, Now: now}
}

func (d *deviceItem) Render() app.UI {
	dev := d.Device
	label := "Sign out"
	if dev.Current {
		label = "Sign out (this device)"
	}
	return app.Li().Class("device").Class(currentClass(dev.Current)).
		DataSet("testid", "device").
		DataSet("current", strconv.FormatBool(dev.Current)).
		Body(
			app.Div().Class("device-main").Body(
				app.Span().Class("device-agent").DataSet("testid", "device-agent").Text(dev.Agent),
				app.If(dev.Current, func() app.UI { return app.Span().Class("device-badge").Text("this device") }),
			),
			app.Div().Class("device-meta").Body(
				app.Span().Class("device-tabs").DataSet("testid", "device-tabs").DataSet("tabs", dev.Tabs).Text(tabsText(dev.Tabs)),
				app.Span().Class("device-last-seen").DataSet("testid", "device-last-seen").
					Title(dev.LastSeen.Local().Format(time.DateTime)).
					Text(lastSeenText(d.Now, dev.LastSeen)),
			),
			app.Button().
				Type("button").
				Class("btn ghost small").
				DataSet("testid", "device-revoke").
				OnClick(func(ctx app.Context, _ app.Event) { ctx.NewActionWithValue(actionRevoke, dev.ID) }).
				Text(label),
		)
}

func currentClass(current bool) string {
	if current {
		return "current"
	}
	return ""
}

// tabsText says how many tabs of a device are open.
func tabsText(n int) string {
	switch {
	case n <= 0:
		return "no open tab"
	case n == 1:
		return "1 tab"
	default:
		return strconv.Itoa(n) + " tabs"
	}
}

// lastSeenText says when a device was last seen, coarsely, as of now.
func lastSeenText(now, seen time.Time) string {
	if seen.IsZero() {
		return "never seen"
	}
	d := now.Sub(seen)
	switch {
	case d < time.Minute:
		return "active now"
	case d < time.Hour:
		return "seen " + strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 24*time.Hour:
		return "seen " + strconv.Itoa(int(d/time.Hour)) + " h ago"
	default:
		return "seen " + seen.Local().Format("2 Jan 15:04")
	}
}

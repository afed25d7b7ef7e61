package webclient

import (
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// deviceList is the signed-in user's devices, as GET /devices listed them
// (the current one first); it is read again on every devices changed.
type deviceList struct {
	app.Compo

	Devices []shared.Device
	Loaded  bool
	Now     time.Time
}

func newDeviceList(devices []shared.Device, loaded bool, now time.Time) *deviceList {
	return &deviceList{Devices: devices, Loaded: loaded, Now: now}
}

func (l *deviceList) Render() app.UI {
	return app.Div().Class("device-block").Body(
		app.H3().Class("device-title").Text("Your devices"),
		app.If(!l.Loaded, func() app.UI { return app.P().Class("device-empty").Text("Loading…") }),
		app.Ul().Class("devices").DataSet("testid", "devices").Body(
			app.Range(l.Devices).Slice(func(i int) app.UI {
				return newDeviceItem(l.Devices[i], l.Now)
			}),
		),
	)
}

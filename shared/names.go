package shared

// Events lists every Socket.IO event above, and Routes every API route: the
// bounded label values of the server's metrics (anything else counts as
// "other"). A new event or route goes into its list too; TestNamesListed
// checks that none is missing.
var (
	Events = []string{EventCurrentCount, EventIncr, EventSessionEnded, EventDevicesChanged}
	Routes = []string{RouteIncr, RouteLogout, RouteSession, RouteHealth, RouteLogin, RouteDevices, RouteDevicesRevoke}
)

package webclient

import "testing"

func TestConnStatusNext(t *testing.T) {
	tests := []struct {
		name   string
		given  connStatus
		when   connEvent
		active bool
		expect connStatus
	}{
		{name: "ok, dial", given: statusDisconnected, when: evDial, expect: statusConnecting},
		{name: "ok, connect", given: statusConnecting, when: evConnect, expect: statusConnected},
		{name: "ok, transport lost: the client retries", given: statusConnected, when: evDisconnect, active: true, expect: statusReconnecting},
		{name: "ok, server disconnect: no retry", given: statusConnected, when: evDisconnect, active: false, expect: statusDisconnected},
		{name: "ok, connect error while retrying", given: statusConnecting, when: evConnectError, active: true, expect: statusReconnecting},
		{name: "ok, connect error, given up", given: statusReconnecting, when: evConnectError, active: false, expect: statusDisconnected},
		{name: "ok, reconnect attempt", given: statusDisconnected, when: evReconnectAttempt, expect: statusReconnecting},
		{name: "ok, logout", given: statusConnected, when: evLoggedOut, expect: statusLoggedOut},
		{name: "ok, logged out survives the disconnect that follows", given: statusLoggedOut, when: evDisconnect, expect: statusLoggedOut},
		{name: "ok, logged out survives a reconnect attempt", given: statusLoggedOut, when: evReconnectAttempt, active: true, expect: statusLoggedOut},
		{name: "ok, logged out survives a connect error", given: statusLoggedOut, when: evConnectError, active: true, expect: statusLoggedOut},
		{name: "ok, the next increment dials again", given: statusLoggedOut, when: evDial, expect: statusConnecting},
		{name: "ok, expiry: reconnected to a new session", given: statusReconnecting, when: evConnect, expect: statusConnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.given.next(tt.when, tt.active); got != tt.expect {
				t.Errorf("%q.next(%d, %v) = %q, want %q", tt.given, tt.when, tt.active, got, tt.expect)
			}
		})
	}
}

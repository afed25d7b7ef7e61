package webclient

import "testing"

func TestCounterPageClear(t *testing.T) {
	tests := []struct {
		name   string
		given  string // the failure shown
		when   string // what just worked
		expect string // the failure shown after
	}{
		{name: "ok, the failed operation worked", given: failIncr, when: failIncr, expect: ""},
		{name: "ok, an increment answers the other kind", given: failIncrSocket, when: failIncr, expect: ""},
		{name: "ok, a logout answers a failed increment", given: failIncr, when: failLogout, expect: ""},
		{name: "ok, loading the count answers its failure", given: failLoad, when: failLoad, expect: ""},
		{name: "ok, loading the count does not answer an increment", given: failIncr, when: failLoad, expect: failIncr},
		{name: "ok, an increment does not load the count", given: failLoad, when: failIncr, expect: failLoad},
		{name: "ok, a protocol error stays", given: failProtocol, when: failIncr, expect: failProtocol},
		{name: "ok, nothing shown", given: "", when: failIncr, expect: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &counterPage{failure: tt.given, detail: "detail"}
			p.clear(tt.when)
			if p.failure != tt.expect {
				t.Errorf("failure %q after %q worked, want %q", p.failure, tt.when, tt.expect)
			}
			if (p.failure == "") != (p.detail == "") {
				t.Errorf("failure %q with detail %q", p.failure, p.detail)
			}
		})
	}
}

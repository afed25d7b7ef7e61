package bench

// Result is the one JSON line a run prints. Its fields carry the names of
// bench.mjs's report, so that both tools' lines compare field by field.
type Result struct {
	Tool               string         `json:"tool"`
	URL                string         `json:"url"`
	Client             string         `json:"client"`
	Sockets            SocketsReport  `json:"sockets"`
	Load               LoadReport     `json:"load"`
	HTTP               HTTPReport     `json:"http"`
	Delivery           DeliveryReport `json:"delivery"`
	Server             *ServerReport  `json:"server"`
	ClientCPULoadDrain float64        `json:"client_cpu_s_load_and_drain"`
	Host               HostReport     `json:"host"`
	WallS              float64        `json:"wall_s"`
}

type SocketsReport struct {
	Requested  int            `json:"requested"`
	Connected  int            `json:"connected"`
	Failed     int            `json:"failed"`
	Sessions   int            `json:"sessions"`
	PerSession int            `json:"per_session"`
	ConnectMs  float64        `json:"connect_ms"`
	Errors     map[string]int `json:"errors"`
}

type LoadReport struct {
	DurationS            float64      `json:"duration_s"`
	Mode                 string       `json:"mode"`
	Concurrency          int          `json:"concurrency,omitempty"`
	EffectiveConcurrency int          `json:"effective_concurrency,omitempty"`
	Rate                 float64      `json:"rate,omitempty"`
	Scheduled            int          `json:"scheduled,omitempty"`
	Sent                 int          `json:"sent,omitempty"`
	Skipped              int          `json:"skipped"`
	AchievedRPS          float64      `json:"achieved_rps,omitempty"`
	LagMs                *Percentiles `json:"lag_ms,omitempty"`
	DrainS               float64      `json:"drain_s"`
}

type Percentiles struct {
	P50 *float64 `json:"p50"`
	P99 *float64 `json:"p99"`
	Max *float64 `json:"max"`
}

type HTTPReport struct {
	Requests       int64            `json:"requests"`
	OK             int64            `json:"ok"`
	Errors         int64            `json:"errors"`
	ErrorKinds     map[string]int64 `json:"error_kinds"`
	RPS            float64          `json:"rps"`
	P50Ms          *float64         `json:"p50_ms"`
	P99Ms          *float64         `json:"p99_ms"`
	MaxMs          *float64         `json:"max_ms"`
	CountAnomalies int64            `json:"count_anomalies"`
}

type DeliveryReport struct {
	Expected              int64    `json:"expected"`
	Received              int64    `json:"received"`
	Missed                int64    `json:"missed"`
	P50Ms                 *float64 `json:"p50_ms"`
	P99Ms                 *float64 `json:"p99_ms"`
	MaxMs                 *float64 `json:"max_ms"`
	EventsPerS            float64  `json:"events_per_s"`
	DuplicateOrUntracked  int      `json:"duplicate_or_untracked_events"`
	NonNumeric            int64    `json:"non_numeric_events"`
	DisconnectsDuringLoad int64    `json:"socket_disconnects_during_load"`
	SamplesCapped         bool     `json:"latency_samples_capped"`
}

type ServerReport struct {
	PID                 int      `json:"pid"`
	RSSBeforeKB         *int64   `json:"rss_before_sockets_kb"`
	RSSAfterKB          *int64   `json:"rss_after_sockets_kb"`
	RSSAfterLoadKB      *int64   `json:"rss_after_load_kb"`
	BytesPerSocket      *int64   `json:"bytes_per_socket"`
	CPULoad             *float64 `json:"cpu_s_during_load"`
	CPULoadDrain        *float64 `json:"cpu_s_load_and_drain"`
	CPUUserLoadDrain    *float64 `json:"cpu_user_s_load_and_drain"`
	CPUSysLoadDrain     *float64 `json:"cpu_sys_s_load_and_drain"`
	CPUUsPerRequest     *float64 `json:"cpu_us_per_request"`
	CPUUserUsPerRequest *float64 `json:"cpu_user_us_per_request"`
}

type HostReport struct {
	LoadavgStart     *float64 `json:"loadavg_1m_start"`
	LoadavgEnd       *float64 `json:"loadavg_1m_end"`
	PressureStart    *float64 `json:"cpu_pressure_some_avg10_start"`
	PressureEnd      *float64 `json:"cpu_pressure_some_avg10_end"`
	NProc            int      `json:"nproc"`
	BusyCPULoadDrain *float64 `json:"busy_cpu_s_load_and_drain"`
}

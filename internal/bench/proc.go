package bench

import (
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// What /proc says about a process and the host (Linux). Every reader
// returns ok=false when the file cannot be read, so the report says null
// instead of a made-up figure.

var vmRSS = regexp.MustCompile(`VmRSS:\s+(\d+)\s+kB`)

// rssKB is the resident set size of pid, in KiB.
func rssKB(pid int) (int64, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	m := vmRSS.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	return n, err == nil
}

// cpuTimes is a process's user and system CPU seconds.
type cpuTimes struct{ user, sys float64 }

// userHZ is the clock tick of /proc/<pid>/stat on Linux.
const userHZ = 100

func procCPU(pid int) (cpuTimes, bool) {
	if pid <= 0 {
		return cpuTimes{}, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return cpuTimes{}, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return cpuTimes{}, false
	}
	u, err1 := strconv.ParseFloat(f[11], 64) // utime
	y, err2 := strconv.ParseFloat(f[12], 64) // stime
	if err1 != nil || err2 != nil {
		return cpuTimes{}, false
	}
	return cpuTimes{u / userHZ, y / userHZ}, true
}

// selfCPU is this process's CPU seconds (user + system).
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func loadavg1() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	x, err := strconv.ParseFloat(f[0], 64)
	return x, err == nil
}

var pressureSome = regexp.MustCompile(`some avg10=([\d.]+)`)

// cpuPressure is the share of the last 10 s in which some runnable task
// waited for a CPU: how busy the host is with other work.
func cpuPressure() (float64, bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	m := pressureSome.FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(m[1]), 64)
	return x, err == nil
}

// hostBusy is the CPU seconds the whole host has been busy (all cores).
func hostBusy() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var sum float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		if i < len(f) {
			x, _ := strconv.ParseFloat(f[i], 64)
			sum += x
		}
	}
	return sum / userHZ, true
}

func nproc() int { return runtime.NumCPU() }

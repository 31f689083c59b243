package migrate

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// HostUsage is the host's CPU and memory use sampled during a phase, as the study godwit
// starts from reported them for checkpoint and restore.
type HostUsage struct {
	// CPU is busy time as a fraction of all cores (0..1).
	CPUPeak float64 `json:"cpuPeak"`
	CPUMean float64 `json:"cpuMean"`
	// Memory used on the host (MemTotal - MemAvailable), bytes.
	MemPeak int64 `json:"memPeakBytes"`
	MemMean int64 `json:"memMeanBytes"`
	Samples int   `json:"samples"`
}

// HostSampler samples the host's CPU (/proc/stat) and memory (/proc/meminfo) every
// interval until stopped. Migrations use it for checkpoint and restore; the calibration
// benchmark for plain Docker's.
type HostSampler struct {
	stop chan struct{}
	done chan HostUsage
}

// StartHostSampler starts sampling in a goroutine of its own.
func StartHostSampler(interval time.Duration) *HostSampler {
	s := &HostSampler{stop: make(chan struct{}), done: make(chan HostUsage, 1)}
	go s.run(interval)
	return s
}

// Stop ends sampling and returns the summary.
func (s *HostSampler) Stop() HostUsage {
	close(s.stop)
	return <-s.done
}

func (s *HostSampler) run(interval time.Duration) {
	var u HostUsage
	var cpuSum float64
	var memSum int64
	prevBusy, prevTotal, ok := cpuTimes()
	sample := func() {
		busy, total, ok2 := cpuTimes()
		if ok && ok2 && total > prevTotal {
			f := float64(busy-prevBusy) / float64(total-prevTotal)
			cpuSum += f
			u.CPUPeak = max(u.CPUPeak, f)
		}
		prevBusy, prevTotal, ok = busy, total, ok2
		if m, err := memUsed(); err == nil {
			memSum += m
			u.MemPeak = max(u.MemPeak, m)
		}
		u.Samples++
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sample()
		case <-s.stop:
			sample()
			if u.Samples > 0 {
				u.CPUMean = cpuSum / float64(u.Samples)
				u.MemMean = memSum / int64(u.Samples)
			}
			s.done <- u
			return
		}
	}
}

// cpuTimes reads the aggregate busy and total jiffies from /proc/stat.
func cpuTimes() (busy, total uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range fields[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, true
}

// meminfo reads /proc/meminfo's fields, in bytes.
func meminfo() (map[string]int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil {
			m[k] = n << 10
		}
	}
	return m, sc.Err()
}

// memUsed is the host's memory in use: MemTotal - MemAvailable.
func memUsed() (int64, error) {
	m, err := meminfo()
	if err != nil {
		return 0, err
	}
	return m["MemTotal"] - m["MemAvailable"], nil
}

// memAvailable is the host's MemAvailable.
func memAvailable() (int64, error) {
	m, err := meminfo()
	if err != nil {
		return 0, err
	}
	v, ok := m["MemAvailable"]
	if !ok {
		return 0, errors.New("MemAvailable not in /proc/meminfo")
	}
	return v, nil
}

package calibrate

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// sampler records the host's peak CPU busy fraction (0..1 of all cores) and peak memory in
// use (MemTotal - MemAvailable) while plain Docker checkpoints and restores, as migrate does
// for godwit's own phases.
type sampler struct {
	stop chan struct{}
	done chan peaks
}

type peaks struct {
	cpu float64
	mem int64
}

func startSampler(interval time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan peaks, 1)}
	go s.run(interval)
	return s
}

func (s *sampler) Stop() peaks {
	close(s.stop)
	return <-s.done
}

func (s *sampler) run(interval time.Duration) {
	var p peaks
	busy0, total0, ok0 := readCPU()
	if m, ok := readMemUsed(); ok {
		p.mem = m
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	sample := func() {
		busy, total, ok := readCPU()
		if ok && ok0 && total > total0 {
			if f := float64(busy-busy0) / float64(total-total0); f > p.cpu {
				p.cpu = f
			}
		}
		busy0, total0, ok0 = busy, total, ok
		if m, ok := readMemUsed(); ok && m > p.mem {
			p.mem = m
		}
	}
	for {
		select {
		case <-t.C:
			sample()
		case <-s.stop:
			sample()
			s.done <- p
			return
		}
	}
}

// readCPU returns busy and total jiffies from the first line of /proc/stat.
func readCPU() (busy, total uint64, ok bool) {
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
		// guest and guest_nice (fields 9, 10) are already counted in user and nice.
		if i >= 8 {
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, true
}

// readMemUsed returns MemTotal - MemAvailable in bytes.
func readMemUsed() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var totalKB, availKB int64 = -1, -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			totalKB = v
		case "MemAvailable:":
			availKB = v
		}
	}
	if totalKB < 0 || availKB < 0 {
		return 0, false
	}
	return (totalKB - availKB) << 10, true
}

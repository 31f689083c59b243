// Command memhog is godwit's test workload: a tiny static program that proves a container's
// state survived a migration. It allocates -mib MiB filled with a pattern derived from a seed
// chosen at start, counts ticks, and answers every TCP connection on -addr with one line:
//
//	ticks=<n> seed=<seed> mib=<mib> crc=<crc32c of the memory, hex>
//
// After a live migration the seed and crc are unchanged and ticks has continued from where it
// was; a restart from scratch would show a new seed and ticks near zero.
//
// It also has a CPU knob, to make its node hot on demand: a connection to -control that
// sends "cpu N\n" makes it burn N cores (0 to 4; 0 stops), answered with "ok cpu=N\n". The
// knob is part of its memory, so it survives a migration too.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 64, "memory to allocate and fill, MiB")
	addr := flag.String("addr", "127.0.0.1:7070", "TCP address to answer on")
	tick := flag.Duration("tick", 100*time.Millisecond, "tick interval")
	mptcp := flag.Bool("mptcp", false, "listen with MPTCP (which CRIU cannot dump): for pre-flight tests")
	control := flag.String("control", "127.0.0.1:7071", "TCP address of the CPU knob (empty: none)")
	flag.Parse()

	seed := uint64(time.Now().UnixNano())
	mem := make([]byte, *mib<<20)
	fill(mem, seed)
	table := crc32.MakeTable(crc32.Castagnoli)
	sum := crc32.Checksum(mem, table)

	var ticks atomic.Uint64
	go func() {
		for range time.Tick(*tick) {
			ticks.Add(1)
		}
	}()

	// CRIU cannot dump MPTCP sockets, which Go >= 1.24 opens by default.
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(*mptcp)
	ln, err := lc.Listen(context.Background(), "tcp", *addr)
	if err != nil {
		log.Fatalf("memhog: %v", err)
	}
	var cores atomic.Uint64 // float64 bits
	if *control != "" {
		cl, err := lc.Listen(context.Background(), "tcp", *control)
		if err != nil {
			log.Fatalf("memhog: %v", err)
		}
		go serveKnob(cl, &cores)
		for w := range maxCores {
			go burn(&cores, w)
		}
	}
	fmt.Fprintf(os.Stdout, "memhog: %d MiB, seed %d, crc %08x, listening on %s\n", *mib, seed, sum, *addr)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		// Recompute the checksum every time: it proves the memory itself is intact, not a
		// cached number.
		fmt.Fprintf(c, "ticks=%d seed=%d mib=%d crc=%08x cpu=%g\n", ticks.Load(), seed, *mib, crc32.Checksum(mem, table),
			math.Float64frombits(cores.Load()))
		c.Close()
	}
}

// fill writes a xorshift stream from seed over mem, touching every page so it is resident.
func fill(mem []byte, seed uint64) {
	x := seed | 1
	for i := 0; i+8 <= len(mem); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(mem[i:], x)
	}
}

// maxCores bounds the CPU knob.
const maxCores = 4

// serveKnob sets the cores to burn from "cpu N" lines.
func serveKnob(ln net.Listener, cores *atomic.Uint64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		f := strings.Fields(line)
		var n float64
		if len(f) == 2 && f[0] == "cpu" {
			n, err = strconv.ParseFloat(f[1], 64)
		} else {
			err = fmt.Errorf("want \"cpu N\", got %q", strings.TrimSpace(line))
		}
		if err == nil && !(n >= 0 && n <= maxCores) {
			err = fmt.Errorf("cpu %v: want 0 to %d", n, maxCores)
		}
		if err != nil {
			fmt.Fprintf(c, "error: %v\n", err)
		} else {
			cores.Store(math.Float64bits(n))
			fmt.Fprintf(c, "ok cpu=%g\n", n)
		}
		c.Close()
	}
}

// burn is worker w of the CPU knob: while the knob asks for more than w cores, it spins
// whenever the process has used less CPU time in the current 100 ms window than the knob
// asks for, and sleeps otherwise. Measuring the process's own CPU time, not the wall
// clock, keeps the load near the knob on a busy machine too; a new window every 100 ms
// keeps a freeze (a checkpoint) from being paid back with a burst.
func burn(cores *atomic.Uint64, w int) {
	const window = 100 * time.Millisecond
	for {
		c := math.Float64frombits(cores.Load())
		if c <= float64(w) {
			time.Sleep(window)
			continue
		}
		start, cpu0 := time.Now(), cpuTime()
		for el := time.Since(start); el < window; el = time.Since(start) {
			if cpuTime()-cpu0 < time.Duration(c*float64(el)) {
				spin(50 * time.Microsecond)
			} else {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var sink uint64

// spin keeps a CPU busy for about d.
func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := sink
	for time.Now().Before(end) {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink = x
}

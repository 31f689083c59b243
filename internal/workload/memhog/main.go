// Command memhog is godwit's test workload: a tiny static program that proves a container's
// state survived a migration. It allocates -mib MiB filled with a pattern derived from a seed
// chosen at start, counts ticks, and answers every TCP connection on -addr with one line:
//
//	ticks=<n> seed=<seed> mib=<mib> crc=<crc32c of the memory, hex>
//
// After a live migration the seed and crc are unchanged and ticks has continued from where it
// was; a restart from scratch would show a new seed and ticks near zero.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 64, "memory to allocate and fill, MiB")
	addr := flag.String("addr", "127.0.0.1:7070", "TCP address to answer on")
	tick := flag.Duration("tick", 100*time.Millisecond, "tick interval")
	mptcp := flag.Bool("mptcp", false, "listen with MPTCP (which CRIU cannot dump): for pre-flight tests")
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
		fmt.Fprintf(c, "ticks=%d seed=%d mib=%d crc=%08x\n", ticks.Load(), seed, *mib, crc32.Checksum(mem, table))
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

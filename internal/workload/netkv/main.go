// Command netkv is godwit's networked test workload: a tiny static TCP server that keeps
// state in memory and keeps connections open, so tests can tell a live migration (state and,
// where the address moves, connections survive) from a restart. One request per line:
//
//	PUT <key> <value>   -> OK
//	GET <key>           -> VALUE <value> | NONE
//	PING <token>        -> PONG <token>
//	RESOLVE <name>      -> ADDRS <a,b,...> | ERR <message>   (through the container's DNS)
//	SEED                -> SEED <number chosen at start>
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "TCP address to listen on")
	flag.Parse()

	seed := time.Now().UnixNano()
	var mu sync.Mutex
	store := map[string]string{}

	lc := net.ListenConfig{}
	// CRIU cannot dump MPTCP sockets, which Go >= 1.24 opens by default.
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", *addr)
	if err != nil {
		log.Fatalf("netkv: %v", err)
	}
	fmt.Fprintf(os.Stdout, "netkv: seed %d, listening on %s\n", seed, *addr)
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
		go func(c net.Conn) {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 0 {
					continue
				}
				var reply string
				switch {
				case f[0] == "PUT" && len(f) == 3:
					mu.Lock()
					store[f[1]] = f[2]
					mu.Unlock()
					reply = "OK"
				case f[0] == "GET" && len(f) == 2:
					mu.Lock()
					v, ok := store[f[1]]
					mu.Unlock()
					reply = "NONE"
					if ok {
						reply = "VALUE " + v
					}
				case f[0] == "PING" && len(f) == 2:
					reply = "PONG " + f[1]
				case f[0] == "RESOLVE" && len(f) == 2:
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					addrs, err := net.DefaultResolver.LookupHost(ctx, f[1])
					cancel()
					reply = "ADDRS " + strings.Join(addrs, ",")
					if err != nil {
						reply = "ERR " + err.Error()
					}
				case f[0] == "SEED":
					reply = fmt.Sprintf("SEED %d", seed)
				default:
					reply = "ERR bad request"
				}
				if _, err := fmt.Fprintln(c, reply); err != nil {
					return
				}
			}
		}(c)
	}
}

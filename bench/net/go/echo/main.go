// bench/net/go/echo/main.go - the Go peer of the echo benchmarks.
//
//	go-echo PORT    listen on 127.0.0.1:PORT until killed
//
// Run with GOMAXPROCS=1 (one P runs every goroutine, like coro's one loop;
// the runtime's own threads still exist: that is Go). One goroutine per
// connection reads into a 64 KiB buffer and writes every byte back; the
// net package sets TCP_NODELAY on every connection. Standard library only.
package main

import (
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-echo PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-echo:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "go-echo: accept:", err)
			continue
		}
		go serve(c)
	}
}

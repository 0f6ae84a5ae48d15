// bench/net/go/http/main.go - the Go net/http peer of the http benchmarks.
//
//	go-http PORT    listen on 127.0.0.1:PORT until killed
//
// Run with GOMAXPROCS=1. GET / answers 200 "hello, world\n" with
// Content-Length (HTTP/1.1 keep-alive is net/http's default); any other
// path answers 404. Standard library only.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

var body = []byte("hello, world\n")

func hello(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", "13")
	w.Write(body)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-http PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-http:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "go-http:", http.Serve(ln, http.HandlerFunc(hello)))
	os.Exit(1)
}

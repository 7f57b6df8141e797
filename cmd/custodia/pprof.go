//go:build pprof

package main

// Built only with -tags pprof, for profiling under the bench/ scripts:
// CUSTODIA_PPROF=127.0.0.1:6060 serves net/http/pprof on that loopback
// address. Release builds carry no profiler.

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("CUSTODIA_PPROF")
	if addr == "" {
		return
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		os.Stderr.WriteString("custodia: CUSTODIA_PPROF must be a loopback host:port\n")
		os.Exit(2)
	}
	go func() { _ = http.ListenAndServe(addr, nil) }()
}

// The pod sandbox's process: it holds the pod's namespaces open and does nothing else. Upstream's
// pause is C; this is the same contract in Go so that only the Go toolchain is needed to build it:
// exit 0 on SIGINT/SIGTERM, reap children when it is PID 1 of a shared process namespace.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s == syscall.SIGCHLD {
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}

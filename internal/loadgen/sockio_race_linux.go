//go:build linux && race

package loadgen

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// See sockio_linux.go.
func sockRead(fd int, p []byte) (int, error)                 { return syscall.Read(fd, p) }
func sockWrite(fd int, p []byte) (int, error)                { return syscall.Write(fd, p) }
func epollNow(ep int, events []unix.EpollEvent) (int, error) { return unix.EpollWait(ep, events, 0) }

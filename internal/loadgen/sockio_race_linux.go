//go:build linux && race

package loadgen

import "syscall"

// See sockio_linux.go.
func sockRead(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func sockWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }

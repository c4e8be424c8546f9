//go:build linux && !race

package loadgen

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockRead and sockWrite are read(2) and write(2) on an event loop's
// non-blocking sockets. They never block, so they skip the bookkeeping
// syscall.Read and syscall.Write do for calls that might (entersyscall and
// exitsyscall, which also wake the runtime's sysmon thread when it
// sleeps). Race-detector builds use syscall.Read and syscall.Write
// (sockio_race_linux.go): their annotations, shared with package net, let
// a test's server and the loop synchronise through the socket.
func sockRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

func sockWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// epollNow is epoll_wait(2) with a zero timeout: it never blocks either,
// so it is a raw system call too. It is the event loop's look for ready
// connections before and after it parks on Go's netpoller.
func epollNow(ep int, events []unix.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

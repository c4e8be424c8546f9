package prefork

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// setReusePort sets SO_REUSEADDR and SO_REUSEPORT before bind, so several
// processes can each listen on the same address (the kernel spreads new
// connections across their sockets) and the master can hold a bound but
// non-listening socket that reserves the port.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// listenReusePort opens a listening TCP socket on addr with SO_REUSEPORT.
func listenReusePort(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: setReusePort}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen with SO_REUSEPORT on %s: %w", addr, err)
	}
	return ln, nil
}

// reservePort binds (without listening) a SO_REUSEPORT socket to addr and
// returns the bound address, which resolves port 0 to a real port. The
// socket receives no connections because it never listens, but it keeps the
// port reserved for the workers while none of them is running.
func reservePort(addr string) (*net.TCPAddr, *os.File, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", addr, err)
	}
	family, sa := syscall.AF_INET, syscall.Sockaddr(nil)
	if ip4 := ta.IP.To4(); ip4 != nil || ta.IP == nil {
		s4 := &syscall.SockaddrInet4{Port: ta.Port}
		if ip4 != nil {
			copy(s4.Addr[:], ip4)
		}
		sa = s4
	} else {
		family = syscall.AF_INET6
		s6 := &syscall.SockaddrInet6{Port: ta.Port}
		copy(s6.Addr[:], ta.IP.To16())
		sa = s6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("reserve %s: socket: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), "prefork-reserved-port")
	for _, opt := range []int{syscall.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, 1); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reserve %s: setsockopt: %w", addr, err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reserve %s: bind: %w", addr, err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reserve %s: getsockname: %w", addr, err)
	}
	switch b := bound.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(b.Addr[:]).To16(), Port: b.Port}, f, nil
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(b.Addr[:]), Port: b.Port}, f, nil
	}
	f.Close()
	return nil, nil, fmt.Errorf("reserve %s: unexpected address family", addr)
}

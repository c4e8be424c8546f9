//go:build !linux

package loadgen

import "sync"

// loopsSupported reports whether the closed model may run on event loops
// (see evloop_linux.go); elsewhere every user is a goroutine.
const loopsSupported = false

type evLoop struct{}

func (e *engine) newLoops(*sync.WaitGroup, int) []*evLoop { return nil }
func (l *evLoop) addUser(int) bool                        { return false }
func (l *evLoop) wake()                                   {}

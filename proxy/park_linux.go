package proxy

import (
	"errors"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parker holds the copy loops of quiet forwarded sessions without their
// goroutines: a direction that has read nothing for a while registers its
// source's socket here and returns, and the parker starts it again when
// the socket becomes readable (data, end of file or an error). An IMAP
// session that sits in IDLE for hours then costs its connections' state,
// not two goroutine stacks.
//
// The sockets go into an epoll set of the parker's own, and that set is
// itself waited on through Go's netpoller (an epoll descriptor is readable
// while it has events ready): one goroutine runs the wakes, and only while
// something is parked.
type parker struct {
	epfd int
	ep   *os.File // epfd, for the netpoller
	rc   syscall.RawConn

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]parked
	looping bool  // loop runs
	broken  error // the epoll set failed: nothing parks any more

	parks       int         // directions parked since memory was last given back
	released    time.Time   // when it was
	releaseTime *time.Timer // gives it back once parking has been quiet
}

// After a wave of sessions has gone quiet, the memory their goroutines
// held (stacks, and the garbage of their logins) is not needed until the
// next wave, but Go keeps it until its next collection, which a process
// that only waits may not run for minutes. Once at least releaseAfterParks
// directions have parked and parking has been quiet for releaseQuiet, the
// parker gives it back to the system (a collection, then the free pages),
// not more often than every releaseEvery.
const (
	releaseAfterParks = 512
	releaseQuiet      = time.Second
	releaseEvery      = 5 * time.Second
)

// parkedOne counts a park for the memory release. p.mu is held.
func (p *parker) parkedOne() {
	p.parks++
	if p.parks < releaseAfterParks {
		return
	}
	if p.releaseTime == nil {
		p.releaseTime = time.AfterFunc(releaseQuiet, p.release)
		return
	}
	p.releaseTime.Reset(releaseQuiet)
}

// release gives memory back after a wave of parks (parkedOne).
func (p *parker) release() {
	p.mu.Lock()
	if wait := releaseEvery - time.Since(p.released); wait > 0 {
		p.releaseTime.Reset(wait)
		p.mu.Unlock()
		return
	}
	p.parks, p.released = 0, time.Now()
	p.mu.Unlock()
	debug.FreeOSMemory()
}

// parked is a registered socket and what to run when it is readable.
type parked struct {
	fd   int
	wake func()
}

var (
	theParker     *parker
	theParkerOnce sync.Once
)

// idleParker is the process's parker, nil where it could not be set up
// (copy loops then wait in their goroutines, as on other systems).
func idleParker() *parker {
	theParkerOnce.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := unix.SetNonblock(epfd, true); err != nil {
			unix.Close(epfd)
			return
		}
		ep := os.NewFile(uintptr(epfd), "parker-epoll")
		rc, err := ep.SyscallConn()
		if err != nil || ep.SetReadDeadline(time.Time{}) != nil {
			// Not pollable: no parking.
			ep.Close()
			return
		}
		theParker = &parker{epfd: epfd, ep: ep, rc: rc, waiting: make(map[uint64]parked)}
	})
	return theParker
}

// park registers c's socket, one-shot; wake runs (in the parker's
// goroutine: it must not block) once the socket is readable, unless
// unpark took the registration back first. A socket that is readable
// already wakes at once. The returned ticket is for unpark.
func (p *parker) park(c *net.TCPConn, wake func()) (ticket uint64, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return 0, p.broken
	}
	p.next++
	ticket = p.next
	var fd int
	var ctlErr error
	err = rc.Control(func(s uintptr) {
		fd = int(s)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
		ev.Fd, ev.Pad = int32(uint32(ticket)), int32(uint32(ticket>>32))
		// A socket parked before keeps its disarmed one-shot entry for
		// as long as it is open: that entry is re-armed.
		ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
		if errors.Is(ctlErr, unix.ENOENT) {
			ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
		}
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return 0, err
	}
	p.waiting[ticket] = parked{fd: fd, wake: wake}
	p.parkedOne()
	if !p.looping {
		p.looping = true
		p.ep.SetReadDeadline(time.Time{})
		go p.loop()
	}
	return ticket, nil
}

// unpark takes back a registration whose socket is still open; it reports
// false if the wake has run or is running already.
func (p *parker) unpark(ticket uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.waiting[ticket]
	if !ok {
		return false
	}
	delete(p.waiting, ticket)
	// Disarm it: the socket may yet become readable, and its entry
	// stays until it is closed.
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, w.fd, &unix.EpollEvent{})
	if len(p.waiting) == 0 && p.looping {
		p.ep.SetReadDeadline(time.Now()) // the loop ends
	}
	return true
}

// loop runs the wakes of readable sockets until nothing is parked.
func (p *parker) loop() {
	events := make([]unix.EpollEvent, 128)
	for {
		var n int
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				n, werr = unix.EpollWait(int(fd), events, 0)
				if !errors.Is(werr, unix.EINTR) {
					break
				}
			}
			// Nothing ready: the netpoller waits for the set to be.
			return werr != nil || n > 0
		})
		if err == nil {
			err = werr
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// A valid epoll set does not fail; should it, the waiting
			// sessions must not hang: they all go on in goroutines of
			// their own, and nothing parks any more.
			p.mu.Lock()
			p.broken, p.looping = err, false
			all := p.waiting
			p.waiting = nil
			p.mu.Unlock()
			for _, w := range all {
				w.wake()
			}
			return
		}
		for _, ev := range events[:n] {
			ticket := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			w, ok := p.waiting[ticket]
			delete(p.waiting, ticket)
			p.mu.Unlock()
			if ok {
				w.wake()
			}
		}
		p.mu.Lock()
		if len(p.waiting) == 0 {
			p.looping = false
			p.mu.Unlock()
			return
		}
		if err != nil {
			p.ep.SetReadDeadline(time.Time{}) // parked again meanwhile
		}
		p.mu.Unlock()
	}
}

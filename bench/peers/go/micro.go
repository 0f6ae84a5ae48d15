// bench/peers/go/micro.go - the Go peer of the micro suite (the rows and aims: docs/benchmarks.md).
//
//	go-micro list                 the rows this peer runs ("name impl" lines)
//	go-micro BENCH [ITERATIONS]   run one row, print one JSON line
//
// GOMAXPROCS=1: one P runs every goroutine, like coro's one loop (the
// runtime's own threads - GC workers, sysmon - still exist; that is Go).
// Each row does the work of its coro twin in bench/micro.c: same counts,
// same shape, the per-op figure divided the same way. Time is the monotonic
// clock around the measured part (process CPU time for timers, whose
// deadlines are in the future), best of 3. Standard library only.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func emit(bench, metric string, value float64) {
	fmt.Printf("{\"suite\":\"micro\",\"bench\":\"%s\",\"impl\":\"go\",\"metric\":\"%s\",\"value\":%.3f}\n",
		bench, metric, value)
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go: "+format+"\n", args...)
	os.Exit(1)
}

// ---- yield / yield_many: goroutines alternating with runtime.Gosched ----

func runYielders(ntasks int, total int) float64 {
	per := total / ntasks
	var wg sync.WaitGroup
	var start sync.WaitGroup
	gate := make(chan struct{})
	wg.Add(ntasks)
	start.Add(ntasks)
	for i := 0; i < ntasks; i++ {
		go func() {
			defer wg.Done()
			start.Done()
			<-gate // all parked: the measured part starts with every goroutine ready
			for j := 0; j < per; j++ {
				runtime.Gosched()
			}
		}()
	}
	start.Wait()
	t0 := time.Now()
	close(gate)
	wg.Wait()
	dt := time.Since(t0)
	return float64(dt.Nanoseconds()) / float64(per*ntasks)
}

func benchYield(n int) float64     { return runYielders(2, n) }
func benchYieldMany(n int) float64 { return runYielders(1000, n) }

// ---- spawn: go func + WaitGroup, in batches of 1000 like micro.c ----

const spawnBatch = 1000

func benchSpawn(n int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	for done := 0; done < n; done += spawnBatch {
		wg.Add(spawnBatch)
		for i := 0; i < spawnBatch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	dt := time.Since(t0)
	return float64(dt.Nanoseconds()) / float64(n)
}

// ---- memory_per_task: goroutines each blocked in time.Sleep ----

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	var pages, resident int64
	if _, err := fmt.Sscan(string(b), &pages, &resident); err != nil {
		return -1
	}
	return resident * int64(os.Getpagesize())
}

func benchMemoryPerTask(n int) float64 {
	runtime.GC()
	before := rssBytes()
	var started sync.WaitGroup
	started.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			time.Sleep(time.Hour)
		}()
	}
	started.Wait()
	// let the last goroutines reach their Sleep
	for i := 0; i < 3; i++ {
		runtime.Gosched()
	}
	time.Sleep(20 * time.Millisecond)
	after := rssBytes()
	return float64(after-before) / float64(n)
}

// ---- queue_pingpong: a token through two unbuffered channels ----
// One op = one round trip (ping -> pong -> ping), as in micro.c.

func benchQueuePingpong(n int) float64 {
	ping := make(chan int)
	pong := make(chan int)
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v
		}
		close(done)
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if <-pong != i {
			die("queue_pingpong: wrong token")
		}
	}
	<-done
	dt := time.Since(t0)
	return float64(dt.Nanoseconds()) / float64(n)
}

// ---- timeout_churn: wait with a timeout that never fires (arm + cancel) ----
// context.WithTimeout arms a runtime timer, the wait completes at once
// (the value is already there), cancel disarms the timer.

func benchTimeoutChurn(n int) float64 {
	ready := make(chan int, 1)
	bg := context.Background()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ready <- i
		ctx, cancel := context.WithTimeout(bg, time.Hour)
		select {
		case <-ready:
		case <-ctx.Done():
			die("timeout_churn: the timeout fired")
		}
		cancel()
	}
	dt := time.Since(t0)
	return float64(dt.Nanoseconds()) / float64(n)
}

// ---- timers: 1M time.AfterFunc with spread deadlines, all fired ----
// Deadlines spread pseudo-randomly over 0-99 ms; the figure is the process
// CPU time (arming, the runtime's timer heap, every callback) per timer, so
// the wait for the last deadline is not counted.

func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		die("getrusage: %v", err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func benchTimers(n int) float64 {
	var fired int64
	done := make(chan struct{})
	cb := func() {
		if atomic.AddInt64(&fired, 1) == int64(n) {
			close(done)
		}
	}
	seed := uint32(12345)
	c0 := cpuNs()
	for i := 0; i < n; i++ {
		seed = seed*1664525 + 1013904223
		time.AfterFunc(time.Duration(seed>>8%100000)*time.Microsecond, cb)
	}
	<-done
	dc := cpuNs() - c0
	return float64(dc) / float64(n)
}

// ---- skynet: 10^k leaves, fan-out 10, a goroutine per node ----

func skynet(c chan<- int, num, size int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sub := size / 10
	for i := 0; i < 10; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func benchSkynet(n int) float64 {
	c := make(chan int)
	t0 := time.Now()
	go skynet(c, 0, n)
	sum := <-c
	dt := time.Since(t0)
	if sum != n*(n-1)/2 {
		die("skynet: sum %d, want %d", sum, n*(n-1)/2)
	}
	return float64(dt.Nanoseconds()) / float64(n) // per leaf
}

// ---- the table ----

type bench struct {
	name, metric string
	run          func(n int) float64
	n, repeat    int
}

var benches = []bench{
	{"yield", "ns_per_op", benchYield, 2000000, 3},
	{"yield_many", "ns_per_op", benchYieldMany, 2000000, 3},
	{"spawn", "ns_per_op", benchSpawn, 1000000, 3},
	{"memory_per_task", "bytes_per_task", benchMemoryPerTask, 1000000, 1},
	{"timers", "ns_per_op", benchTimers, 1000000, 3},
	{"timeout_churn", "ns_per_op", benchTimeoutChurn, 500000, 3},
	{"queue_pingpong", "ns_per_op", benchQueuePingpong, 1000000, 3},
	{"skynet", "ns_per_op", benchSkynet, 1000000, 3},
}

func main() {
	runtime.GOMAXPROCS(1)
	if len(os.Args) < 2 || os.Args[1] == "list" {
		for _, b := range benches {
			fmt.Printf("%s go\n", b.name)
		}
		if len(os.Args) < 2 {
			os.Exit(1)
		}
		return
	}
	n := 0
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	for _, b := range benches {
		if b.name != os.Args[1] {
			continue
		}
		if n <= 0 {
			n = b.n
		}
		best := 0.0
		for r := 0; r < b.repeat; r++ {
			runtime.GC()
			debug.FreeOSMemory()
			v := b.run(n)
			if r == 0 || v < best {
				best = v
			}
		}
		emit(b.name, b.metric, best)
		return
	}
	fmt.Fprintf(os.Stderr, "go: no benchmark '%s' (try: go-micro list)\n", os.Args[1])
	os.Exit(2)
}

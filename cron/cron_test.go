package cron_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"opsagent/cron"
)

// parseCases seed both TestParseSchedule and FuzzParseSchedule.
var parseCases = []struct {
	name string
	spec string
	ok   bool
}{
	{"five fields", "*/5 * * * *", true},
	{"ranges and lists", "0,30 8-18 * 1-6 1-5", true},
	{"named month and weekday", "15 3 * jan-jun MON,FRI", true},
	{"surrounding blanks", "  0 3 * * *  ", true},
	{"every sub-second", "@every 100ms", true},
	{"every compound", "@every 1h30m", true},
	{"yearly", "@yearly", true},
	{"annually", "@annually", true},
	{"monthly", "@monthly", true},
	{"weekly", "@weekly", true},
	{"daily", "@daily", true},
	{"midnight", "@midnight", true},
	{"hourly", "@hourly", true},
	{"cron tz", "CRON_TZ=Europe/Berlin 0 3 * * *", true},
	{"tz prefix", "TZ=UTC 30 12 * * *", true},
	{"tz with descriptor", "CRON_TZ=America/New_York @daily", true},
	{"tz with every", "CRON_TZ=UTC @every 2s", true},
	{"leap day", "0 0 29 2 *", true},

	{"empty", "", false},
	{"blank", "   ", false},
	{"four fields", "* * * *", false},
	{"six fields", "0 0 3 * * *", false},
	{"minute out of range", "60 * * * *", false},
	{"hour out of range", "0 24 * * *", false},
	{"bad weekday name", "0 0 * * MON-XYZ", false},
	{"zero step", "*/0 * * * *", false},
	{"never fires", "0 0 30 2 *", false},
	{"every zero", "@every 0s", false},
	{"every negative", "@every -1s", false},
	{"every missing duration", "@every", false},
	{"every garbage", "@every soon", false},
	{"every two durations", "@every 1s 2s", false},
	{"unknown descriptor", "@fortnightly", false},
	{"bad tz", "CRON_TZ=Mars/Olympus_Mons 0 0 * * *", false},
	{"tz alone", "CRON_TZ=Europe/Berlin", false},
	{"tz empty name", "CRON_TZ= * * * * *", false},
	{"tz without schedule", "TZ=UTC ", false},
	{"tz with path escape", "TZ=../../etc/passwd 0 0 * * *", false},
}

func TestParseSchedule(t *testing.T) {
	ref := time.Date(2024, time.March, 10, 10, 0, 0, 0, time.UTC)
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cron.ParseSchedule(tc.spec)
			if !tc.ok {
				if !errors.Is(err, cron.ErrSchedule) {
					t.Fatalf("ParseSchedule(%q) error = %v, want ErrSchedule", tc.spec, err)
				}
				if !strings.Contains(err.Error(), strconv.Quote(tc.spec)) {
					t.Errorf("error %q does not quote the spec %q", err, tc.spec)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.spec, err)
			}
			if got := s.String(); got != tc.spec {
				t.Errorf("String() = %q, want %q", got, tc.spec)
			}
			if next := s.Next(ref); !next.After(ref) {
				t.Errorf("Next(%v) = %v, want a later time", ref, next)
			}
		})
	}
}

func TestScheduleNext(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	from := utc(2024, time.March, 13, 10, 7, 30) // a Wednesday
	tests := []struct {
		name string
		spec string
		from time.Time
		want time.Time
	}{
		{"daily at three", "0 3 * * *", from, utc(2024, time.March, 14, 3, 0, 0)},
		{"quarter hours", "*/15 * * * *", from, utc(2024, time.March, 13, 10, 15, 0)},
		{"strictly after", "*/15 * * * *", utc(2024, time.March, 13, 10, 15, 0), utc(2024, time.March, 13, 10, 30, 0)},
		{"hourly", "@hourly", from, utc(2024, time.March, 13, 11, 0, 0)},
		{"daily", "@daily", from, utc(2024, time.March, 14, 0, 0, 0)},
		{"midnight", "@midnight", from, utc(2024, time.March, 14, 0, 0, 0)},
		{"weekly is sunday", "@weekly", from, utc(2024, time.March, 17, 0, 0, 0)},
		{"monthly", "@monthly", from, utc(2024, time.April, 1, 0, 0, 0)},
		{"yearly", "@yearly", from, utc(2025, time.January, 1, 0, 0, 0)},
		{"weekday range", "0 9 * * 1-5", utc(2024, time.March, 16, 12, 0, 0), utc(2024, time.March, 18, 9, 0, 0)},
		{"leap day", "0 0 29 2 *", utc(2025, time.March, 1, 0, 0, 0), utc(2028, time.February, 29, 0, 0, 0)},
		{"every", "@every 90s", from, from.Add(90 * time.Second)},
		{"every sub-second keeps precision", "@every 100ms", from.Add(123 * time.Millisecond), from.Add(223 * time.Millisecond)},
		{"berlin summer", "CRON_TZ=Europe/Berlin 0 3 * * *", utc(2024, time.July, 1, 0, 0, 0), utc(2024, time.July, 1, 1, 0, 0)},
		{"berlin winter", "CRON_TZ=Europe/Berlin 0 3 * * *", utc(2024, time.January, 15, 0, 0, 0), utc(2024, time.January, 15, 2, 0, 0)},
		{"utc zone from berlin time", "TZ=UTC 30 12 * * *", time.Date(2024, time.July, 1, 0, 0, 0, 0, berlin), utc(2024, time.July, 1, 12, 30, 0)},
		{"unzoned follows the argument", "0 3 * * *", time.Date(2024, time.July, 1, 4, 0, 0, 0, berlin), time.Date(2024, time.July, 2, 3, 0, 0, 0, berlin)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := cron.ParseSchedule(tc.spec)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.spec, err)
			}
			if got := s.Next(tc.from); !got.Equal(tc.want) {
				t.Errorf("Next(%v) = %v, want %v", tc.from, got, tc.want)
			}
		})
	}
	t.Run("zero schedule", func(t *testing.T) {
		var s cron.Schedule
		if got := s.Next(from); !got.IsZero() {
			t.Errorf("Next = %v, want zero", got)
		}
		if got := s.String(); got != "" {
			t.Errorf("String = %q, want empty", got)
		}
	})
}

func FuzzParseSchedule(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.spec)
	}
	f.Add("TZ=")
	f.Add("CRON_TZ=\t* * * * *")
	f.Add("@every 1ns")
	f.Add("1-2-3 * * * *")
	f.Add("*/1-5 * * * ?")
	ref := time.Date(2024, time.June, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := cron.ParseSchedule(spec)
		if err != nil {
			if !errors.Is(err, cron.ErrSchedule) {
				t.Fatalf("ParseSchedule(%q) error %v does not wrap ErrSchedule", spec, err)
			}
			return
		}
		if s.String() != spec {
			t.Fatalf("String() = %q, want %q", s.String(), spec)
		}
		if next := s.Next(ref); !next.After(ref) {
			t.Fatalf("ParseSchedule(%q).Next(%v) = %v, want a later time", spec, ref, next)
		}
	})
}

func TestAdd(t *testing.T) {
	sched := mustParse(t, "@hourly")
	noop := func(context.Context) error { return nil }
	s := cron.New(cron.Options{})
	if err := s.Add("a", sched, noop); err != nil {
		t.Fatalf("Add: %v", err)
	}
	tests := []struct {
		name  string
		job   string
		sched cron.Schedule
		fn    cron.Job
		want  error
	}{
		{"duplicate name", "a", sched, noop, cron.ErrDuplicate},
		{"empty name", "", sched, noop, cron.ErrInvalid},
		{"nil job", "b", sched, nil, cron.ErrInvalid},
		{"zero schedule", "b", cron.Schedule{}, noop, cron.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Add(tc.job, tc.sched, tc.fn); !errors.Is(err, tc.want) {
				t.Errorf("Add(%q) = %v, want %v", tc.job, err, tc.want)
			}
		})
	}
	s.Start()
	t.Run("after start", func(t *testing.T) {
		if err := s.Add("c", sched, noop); !errors.Is(err, cron.ErrStarted) {
			t.Errorf("Add after Start = %v, want ErrStarted", err)
		}
	})
	stop(t, s)
	t.Run("after stop", func(t *testing.T) {
		if err := s.Add("d", sched, noop); !errors.Is(err, cron.ErrStarted) {
			t.Errorf("Add after Stop = %v, want ErrStarted", err)
		}
	})
}

func TestTicks(t *testing.T) {
	var runs atomic.Int32
	s := cron.New(cron.Options{})
	add(t, s, "tick", "@every 30ms", func(context.Context) error {
		runs.Add(1)
		return nil
	})
	s.Start()
	s.Start() // a second Start is a no-op
	waitFor(t, "three scheduled runs", func() bool { return runs.Load() >= 3 })
	st := s.Status()[0]
	if st.Runs < 3 || !st.LastOK || st.LastErr != "" {
		t.Errorf("status after ticks = %+v, want Runs>=3, LastOK", st)
	}
	if now := time.Now(); st.Next.Before(now.Add(-time.Second)) || st.Next.After(now.Add(time.Second)) {
		t.Errorf("Next = %v, want within a second of %v", st.Next, now)
	}
	stop(t, s)
	if st := s.Status()[0]; !st.Next.IsZero() {
		t.Errorf("Next after Stop = %v, want zero", st.Next)
	}
	n := runs.Load()
	time.Sleep(100 * time.Millisecond)
	if got := runs.Load(); got != n {
		t.Errorf("runs went from %d to %d after Stop", n, got)
	}
}

func TestNoOverlap(t *testing.T) {
	logs := &syncBuffer{}
	var cur, peak atomic.Int32
	release := make(chan struct{})
	s := cron.New(cron.Options{Logger: textLogger(logs)})
	add(t, s, "slow", "@every 20ms", func(ctx context.Context) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		return nil
	})
	s.Start()
	waitFor(t, "three skipped ticks", func() bool { return s.Status()[0].Skipped >= 3 })
	if st := s.Status()[0]; !st.Running || st.Runs != 0 {
		t.Errorf("status while stuck = %+v, want Running and Runs 0", st)
	}
	close(release)
	stop(t, s)
	if p := peak.Load(); p != 1 {
		t.Errorf("peak concurrent runs = %d, want 1", p)
	}
	out := logs.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "run skipped") || !strings.Contains(out, "job=slow") {
		t.Errorf("log has no info line about a skipped run:\n%s", out)
	}
}

func TestPanicRecovery(t *testing.T) {
	logs := &syncBuffer{}
	done := make(chan cron.Status, 16)
	var calls atomic.Int32
	s := cron.New(cron.Options{
		Logger: textLogger(logs),
		OnDone: func(st cron.Status) { done <- st },
	})
	add(t, s, "fragile", "@every 30ms", func(context.Context) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	})
	s.Start()
	first := receive(t, done)
	if first.LastOK || first.LastErr != "panic: boom" || first.Runs != 1 {
		t.Errorf("status after panic = %+v, want LastErr %q, Runs 1", first, "panic: boom")
	}
	second := receive(t, done)
	if !second.LastOK || second.LastErr != "" || second.Runs != 2 {
		t.Errorf("status after recovery = %+v, want LastOK, Runs 2", second)
	}
	stop(t, s)
	out := logs.String()
	for _, want := range []string{"level=ERROR", "job panicked", "panic: boom", "goroutine ", "cron_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestStopCancelsRunningJob(t *testing.T) {
	started := make(chan struct{})
	var finished atomic.Bool
	var jobErr error
	s := cron.New(cron.Options{})
	add(t, s, "long", "@hourly", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		jobErr = ctx.Err()
		time.Sleep(30 * time.Millisecond) // cleanup that Stop must wait for
		finished.Store(true)
		return ctx.Err()
	})
	s.Start()
	if !s.RunNow("long") {
		t.Fatal("RunNow = false")
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Stop returned before the job finished")
	}
	if !errors.Is(jobErr, context.Canceled) {
		t.Errorf("job saw ctx.Err() = %v, want context.Canceled", jobErr)
	}
	st := s.Status()[0]
	if st.Running || st.Runs != 1 || st.LastOK || st.LastErr != context.Canceled.Error() {
		t.Errorf("status after Stop = %+v, want a finished, cancelled run", st)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopExpiredContext(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var sawCancel atomic.Bool
	s := cron.New(cron.Options{})
	add(t, s, "stubborn", "@hourly", func(ctx context.Context) error {
		close(started)
		<-release // ignores ctx on purpose
		sawCancel.Store(ctx.Err() != nil)
		return nil
	})
	s.Start()
	if !s.RunNow("stubborn") {
		t.Fatal("RunNow = false")
	}
	<-started
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			begin := time.Now()
			err := s.Stop(ctx)
			if !errors.Is(err, tc.want) {
				t.Errorf("Stop = %v, want %v", err, tc.want)
			}
			if took := time.Since(begin); took > time.Second {
				t.Errorf("Stop took %v with an expiring ctx", took)
			}
		})
	}
	close(release)
	stop(t, s)
	if !sawCancel.Load() {
		t.Error("the job's ctx was not cancelled by Stop")
	}
}

func TestDrain(t *testing.T) {
	t.Run("lets the job finish", func(t *testing.T) {
		started := make(chan struct{})
		var finished atomic.Bool
		var jobErr error
		s := cron.New(cron.Options{})
		add(t, s, "reload", "@hourly", func(ctx context.Context) error {
			close(started)
			select {
			case <-time.After(150 * time.Millisecond):
			case <-ctx.Done():
			}
			jobErr = ctx.Err()
			finished.Store(true)
			return nil
		})
		s.Start()
		if !s.RunNow("reload") {
			t.Fatal("RunNow = false")
		}
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Drain(ctx); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if !finished.Load() {
			t.Fatal("Drain returned before the job finished")
		}
		if jobErr != nil {
			t.Errorf("job ctx.Err() = %v during Drain, want nil", jobErr)
		}
		st := s.Status()[0]
		if !st.LastOK || st.Runs != 1 || st.Running || !st.Next.IsZero() {
			t.Errorf("status after Drain = %+v, want one good run and no Next", st)
		}
		if s.RunNow("reload") {
			t.Error("RunNow after Drain = true, want false")
		}
		stop(t, s)
	})
	t.Run("then stop cancels", func(t *testing.T) {
		started := make(chan struct{})
		var jobErr atomic.Value
		s := cron.New(cron.Options{})
		add(t, s, "long", "@hourly", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			jobErr.Store(ctx.Err())
			return ctx.Err()
		})
		if !s.RunNow("long") {
			t.Fatal("RunNow = false")
		}
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := s.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain = %v, want DeadlineExceeded", err)
		}
		if s.Status()[0].Running != true {
			t.Fatal("Drain cancelled the job")
		}
		stop(t, s)
		if err, _ := jobErr.Load().(error); !errors.Is(err, context.Canceled) {
			t.Errorf("job ctx.Err() = %v, want context.Canceled", err)
		}
	})
}

func TestRunNow(t *testing.T) {
	release := make(chan struct{})
	done := make(chan cron.Status, 4)
	s := cron.New(cron.Options{OnDone: func(st cron.Status) { done <- st }})
	add(t, s, "manual", "@yearly", func(context.Context) error {
		<-release
		return nil
	})
	if s.RunNow("nope") {
		t.Error("RunNow of an unknown job = true")
	}
	// Before Start: RunNow still works.
	if !s.RunNow("manual") {
		t.Fatal("RunNow = false")
	}
	if s.RunNow("manual") {
		t.Error("RunNow while running = true, want a skip")
	}
	if st := s.Status()[0]; !st.Running || st.Skipped != 1 {
		t.Errorf("status while running = %+v, want Running, Skipped 1", st)
	}
	close(release)
	if st := receive(t, done); st.Runs != 1 || !st.LastOK {
		t.Errorf("OnDone status = %+v, want Runs 1, LastOK", st)
	}
	s.Start()
	if !s.RunNow("manual") {
		t.Fatal("RunNow after the first run = false")
	}
	if st := receive(t, done); st.Runs != 2 {
		t.Errorf("OnDone status = %+v, want Runs 2", st)
	}
	stop(t, s)
	if s.RunNow("manual") {
		t.Error("RunNow after Stop = true")
	}
}

func TestOnDone(t *testing.T) {
	base := time.Date(2024, time.May, 1, 12, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }
	errBad := errors.New("disk on fire")
	logs := &syncBuffer{}
	done := make(chan cron.Status, 4)
	var s *cron.Scheduler
	var seen []cron.Status
	s = cron.New(cron.Options{
		Logger: textLogger(logs),
		Now:    clock,
		OnDone: func(st cron.Status) {
			seen = s.Status() // calling back into the scheduler must not deadlock
			if st.Name == "panicky" {
				panic("callback bug")
			}
			done <- st
		},
	})
	add(t, s, "good", "@daily", func(context.Context) error { return nil })
	add(t, s, "bad", "@daily", func(context.Context) error { return errBad })
	add(t, s, "panicky", "@daily", func(context.Context) error { return nil })

	tests := []struct {
		job     string
		wantOK  bool
		wantErr string
	}{
		{"good", true, ""},
		{"bad", false, errBad.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.job, func(t *testing.T) {
			if !s.RunNow(tc.job) {
				t.Fatal("RunNow = false")
			}
			st := receive(t, done)
			if st.Name != tc.job || st.Schedule != "@daily" || st.Runs != 1 || st.Running {
				t.Errorf("OnDone status = %+v, want one finished run of %q", st, tc.job)
			}
			if st.LastOK != tc.wantOK || st.LastErr != tc.wantErr {
				t.Errorf("LastOK, LastErr = %v, %q, want %v, %q", st.LastOK, st.LastErr, tc.wantOK, tc.wantErr)
			}
			if !st.LastStart.After(base) || !st.LastEnd.After(st.LastStart) || st.LastEnd.After(base.Add(time.Hour)) {
				t.Errorf("LastStart, LastEnd = %v, %v, want injected clock times after %v", st.LastStart, st.LastEnd, base)
			}
			if len(seen) != 3 {
				t.Errorf("Status() inside OnDone returned %d jobs, want 3", len(seen))
			}
		})
	}
	t.Run("callback panic", func(t *testing.T) {
		if !s.RunNow("panicky") {
			t.Fatal("RunNow = false")
		}
		waitFor(t, "the panicky run to be recorded", func() bool {
			st := s.Status()[2]
			return st.Runs == 1 && !st.Running
		})
		stop(t, s) // must not hang: the slot is released despite the panic
		if out := logs.String(); !strings.Contains(out, "OnDone panicked") {
			t.Errorf("log lacks the OnDone panic:\n%s", out)
		}
	})
}

func TestStatus(t *testing.T) {
	now := time.Date(2024, time.May, 1, 12, 34, 0, 0, time.UTC)
	s := cron.New(cron.Options{Now: func() time.Time { return now }})
	names := []string{"zeta", "alpha", "mid"}
	specs := []string{"@hourly", "@daily", "CRON_TZ=UTC 0 3 * * *"}
	for i, name := range names {
		add(t, s, name, specs[i], func(context.Context) error { return nil })
	}
	want := []time.Time{
		time.Date(2024, time.May, 1, 13, 0, 0, 0, time.UTC),
		time.Date(2024, time.May, 2, 0, 0, 0, 0, time.UTC),
		time.Date(2024, time.May, 2, 3, 0, 0, 0, time.UTC),
	}
	got := s.Status()
	if len(got) != len(names) {
		t.Fatalf("Status returned %d jobs, want %d", len(got), len(names))
	}
	for i, st := range got {
		t.Run(names[i], func(t *testing.T) {
			if st.Name != names[i] || st.Schedule != specs[i] {
				t.Errorf("Status()[%d] = %q %q, want %q %q", i, st.Name, st.Schedule, names[i], specs[i])
			}
			if !st.Next.Equal(want[i]) {
				t.Errorf("Next before Start = %v, want %v", st.Next, want[i])
			}
			if st.Runs != 0 || st.LastOK || st.Running || !st.LastStart.IsZero() {
				t.Errorf("fresh status = %+v, want no runs", st)
			}
		})
	}
	stop(t, s)
	for _, st := range s.Status() {
		if !st.Next.IsZero() {
			t.Errorf("%s: Next after Stop = %v, want zero", st.Name, st.Next)
		}
	}
}

func TestStopBeforeStart(t *testing.T) {
	var runs atomic.Int32
	s := cron.New(cron.Options{})
	add(t, s, "never", "@every 10ms", func(context.Context) error {
		runs.Add(1)
		return nil
	})
	stop(t, s)
	s.Start() // after Stop: does nothing
	time.Sleep(60 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Errorf("%d runs after Stop then Start, want 0", n)
	}
	stop(t, s)
}

func TestNoGoroutineLeak(t *testing.T) {
	for _, how := range []string{"stop", "drain"} {
		t.Run(how, func(t *testing.T) {
			before := runtime.NumGoroutine()
			// inFlight counts runs from job entry to the end of OnDone; it
			// must be zero the moment Stop or Drain returns.
			var inFlight atomic.Int32
			s := cron.New(cron.Options{OnDone: func(cron.Status) {
				time.Sleep(5 * time.Millisecond)
				inFlight.Add(-1)
			}})
			add(t, s, "fast", "@every 10ms", func(context.Context) error {
				inFlight.Add(1)
				return nil
			})
			add(t, s, "waits", "@every 15ms", func(ctx context.Context) error {
				inFlight.Add(1)
				select {
				case <-ctx.Done():
				case <-time.After(40 * time.Millisecond):
				}
				return nil
			})
			add(t, s, "panics", "@every 25ms", func(context.Context) error {
				inFlight.Add(1)
				panic("leak?")
			})
			s.Start()
			time.Sleep(120 * time.Millisecond)
			s.RunNow("fast")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			if how == "stop" {
				err = s.Stop(ctx)
			} else {
				err = s.Drain(ctx)
			}
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			if n := inFlight.Load(); n != 0 {
				t.Errorf("%d runs still in flight after %s returned", n, how)
			}
			// robfig's helper goroutines signal completion just before they
			// return, so allow them a moment to be gone.
			deadline := time.Now().Add(200 * time.Millisecond)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if after := runtime.NumGoroutine(); after > before {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: %d before, %d after %s\n%s", before, after, how, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// helpers

func mustParse(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseSchedule(spec)
	if err != nil {
		t.Fatalf("ParseSchedule(%q): %v", spec, err)
	}
	return s
}

func add(t *testing.T, s *cron.Scheduler, name, spec string, job cron.Job) {
	t.Helper()
	if err := s.Add(name, mustParse(t, spec), job); err != nil {
		t.Fatalf("Add(%q): %v", name, err)
	}
}

func stop(t *testing.T, s *cron.Scheduler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// waitFor polls cond for up to three seconds; the schedules under test tick
// every few tens of milliseconds, so that is ample even on a busy machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func receive(t *testing.T, ch <-chan cron.Status) cron.Status {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(3 * time.Second):
		t.Fatal("timed out waiting for OnDone")
		return cron.Status{}
	}
}

func textLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a bytes.Buffer that job goroutines may log into while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

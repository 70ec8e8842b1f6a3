package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode"

	robfig "github.com/robfig/cron/v3"
)

// Error classes. Returned errors wrap one of these; test with errors.Is.
var (
	// ErrSchedule marks a schedule spec that ParseSchedule rejects.
	ErrSchedule = errors.New("invalid schedule")
	// ErrDuplicate marks an Add whose job name is already taken.
	ErrDuplicate = errors.New("duplicate job name")
	// ErrStarted marks an Add after Start, Stop or Drain: the job set is
	// fixed once the scheduler runs, so a config reload builds a new one.
	ErrStarted = errors.New("scheduler already started")
	// ErrInvalid marks an Add with an empty name, a nil Job or a zero
	// Schedule.
	ErrInvalid = errors.New("invalid job")
)

// Job is one unit of scheduled work. The context is cancelled when the
// scheduler stops (Stop) or the run ends; a job should return soon after
// that. The returned error is recorded in Status.LastErr; it never stops
// the scheduler.
type Job func(ctx context.Context) error

// Schedule is a parsed schedule spec. The zero Schedule never fires.
type Schedule struct {
	spec string
	next robfig.Schedule // nil in the zero Schedule
}

// specParser reads the five-field form (minute hour dom month dow) and the
// @yearly…@hourly descriptors, with robfig's CRON_TZ=/TZ= prefix. It holds
// only its option bits, so sharing it is safe.
var specParser = robfig.NewParser(robfig.Minute | robfig.Hour | robfig.Dom |
	robfig.Month | robfig.Dow | robfig.Descriptor)

// ParseSchedule parses a schedule spec:
//
//	*/15 * * * *                       five fields: minute hour dom month dow
//	@every 90s                         a positive time.ParseDuration interval
//	@daily                             also @yearly @annually @monthly @weekly @midnight @hourly
//	CRON_TZ=Europe/Berlin 0 3 * * *    optional zone prefix (TZ= works too)
//
// Fields are read in the local time zone unless a zone prefix names another.
// An @every interval counts from the previous tick and may be shorter than a
// second. A spec that can never fire (such as "0 0 30 2 *") is rejected.
// Errors wrap ErrSchedule and quote the spec.
func ParseSchedule(spec string) (Schedule, error) {
	next, err := parseSpec(spec)
	if err != nil {
		return Schedule{}, fmt.Errorf("%w %q: %w", ErrSchedule, spec, err)
	}
	return Schedule{spec: spec, next: next}, nil
}

// neverProbe is where ParseSchedule looks for a first activation. robfig
// searches five years ahead, which covers every real date (29 February
// included), so the result does not depend on the probe.
var neverProbe = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

func parseSpec(spec string) (next robfig.Schedule, err error) {
	// A config typo must stay an error: robfig's parser has had panics on
	// malformed input (a TZ= prefix with nothing after it slices out of
	// range), so the prefix is checked here and anything left is caught.
	defer func() {
		if r := recover(); r != nil {
			next, err = nil, fmt.Errorf("unparseable: %v", r)
		}
	}()
	body := strings.TrimSpace(spec)
	if body == "" {
		return nil, errors.New("empty spec")
	}
	zone := ""
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		rest, ok := strings.CutPrefix(body, prefix)
		if !ok {
			continue
		}
		i := strings.IndexFunc(rest, unicode.IsSpace)
		if i < 0 {
			return nil, fmt.Errorf("%s prefix without a schedule after it", prefix)
		}
		zone, body = rest[:i], strings.TrimSpace(rest[i:])
		if zone == "" {
			return nil, fmt.Errorf("%s names no time zone", prefix)
		}
		if _, err := time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("time zone %q: %w", zone, err)
		}
		break
	}
	// robfig's @every rounds to whole seconds and turns 0 or -1s into 1s;
	// both would hide a typo, so the interval is read here.
	if f := strings.Fields(body); len(f) > 0 && f[0] == "@every" {
		if len(f) != 2 {
			return nil, errors.New("@every takes exactly one duration")
		}
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return nil, err
		}
		if d <= 0 {
			return nil, fmt.Errorf("@every interval %s is not positive", d)
		}
		return every(d), nil
	}
	if zone != "" {
		body = "CRON_TZ=" + zone + " " + body
	}
	next, err = specParser.Parse(body)
	if err != nil {
		return nil, err
	}
	if next.Next(neverProbe).IsZero() {
		return nil, errors.New("never fires")
	}
	return next, nil
}

// every fires a fixed interval after the time it is given.
type every time.Duration

func (d every) Next(t time.Time) time.Time { return t.Add(time.Duration(d)) }

// Next returns the first activation strictly after t, or the zero time for
// the zero Schedule. A zoned spec is evaluated in its zone and returned in
// t's location; an unzoned one is evaluated in t's location.
func (s Schedule) Next(t time.Time) time.Time {
	if s.next == nil {
		return time.Time{}
	}
	return s.next.Next(t)
}

// String returns the spec exactly as it was given to ParseSchedule.
func (s Schedule) String() string { return s.spec }

// Options configures a Scheduler. The zero value is usable.
type Options struct {
	// Logger receives skipped ticks (info), run results (info, or warn for
	// an error), panics with their stack (error) and robfig's own chatter
	// (debug). Nil discards everything.
	Logger *slog.Logger
	// OnDone, if set, is called after every run with that job's Status,
	// from the goroutine that ran the job; calls for different jobs may be
	// concurrent. Stop and Drain wait for it to return, so it must not call
	// them itself; Status and RunNow are fine. A panic in it is recovered
	// and logged.
	OnDone func(Status)
	// Now stamps LastStart and LastEnd and is the reference for Next before
	// Start. Ticks themselves follow the real clock. Nil means time.Now.
	Now func() time.Time
}

// Status is a snapshot of one job.
type Status struct {
	Name     string
	Schedule string // the spec as given to ParseSchedule
	// Next is the next scheduled activation: computed from Options.Now
	// before Start, the ticker's own plan after it, and zero once Stop or
	// Drain has been called.
	Next      time.Time
	LastStart time.Time // zero before the first run
	LastEnd   time.Time // zero until the first run ends
	LastErr   string    // error of the last finished run; "" when it succeeded
	Running   bool
	Runs      int  // finished runs, failed and panicked ones included
	Skipped   int  // ticks and RunNow calls refused because the job was running
	LastOK    bool // the last finished run returned nil; false before any
}

// Scheduler runs Jobs on their Schedules without overlap. Its life is
// New, Add…, Start, then Stop or Drain (or Drain then Stop); it cannot be
// restarted. All methods are safe for concurrent use.
//
// Goroutines: robfig's ticker loop runs from Start until Stop or Drain;
// each run is one goroutine that lives until the job and OnDone return.
// Stop and Drain wait for all of them.
type Scheduler struct {
	log    *slog.Logger
	onDone func(Status)
	now    func() time.Time
	cron   *robfig.Cron

	// ctx is the parent of every run's context; cancel is Stop's lever.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	cronDone  context.Context // done when robfig's goroutines have ended; set in closeOnce

	mu         sync.Mutex
	jobs       []*job // in Add order
	byName     map[string]*job
	started    bool
	closing    bool          // Stop or Drain was called: no new runs
	active     int           // runs in flight
	idle       chan struct{} // closed when closing and active == 0
	idleClosed bool
}

// job is one Add call. The fields after run are guarded by Scheduler.mu.
type job struct {
	name  string
	sched Schedule
	run   Job
	id    robfig.EntryID

	running   bool
	lastStart time.Time
	lastEnd   time.Time
	lastErr   string
	lastOK    bool
	runs      int
	skipped   int
}

// New returns a Scheduler with no jobs. Nothing runs until Start or RunNow.
func New(opts Options) *Scheduler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		log:    log,
		onDone: opts.OnDone,
		now:    now,
		// No robfig chain: recovery and skip-if-running are done here so
		// that a panic becomes the run's recorded error and a skipped tick
		// is counted.
		cron:   robfig.New(robfig.WithLogger(cronLogger{log})),
		ctx:    ctx,
		cancel: cancel,
		byName: make(map[string]*job),
		idle:   make(chan struct{}),
	}
}

// Add registers a job under a unique name. It must be called before Start;
// afterwards it returns ErrStarted. A taken name returns ErrDuplicate, and an
// empty name, nil job or zero Schedule returns ErrInvalid.
func (s *Scheduler) Add(name string, sched Schedule, run Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.started || s.closing:
		return fmt.Errorf("add job %q: %w", name, ErrStarted)
	case name == "" || run == nil || sched.next == nil:
		return fmt.Errorf("add job %q: %w", name, ErrInvalid)
	case s.byName[name] != nil:
		return fmt.Errorf("add job %q: %w", name, ErrDuplicate)
	}
	j := &job{name: name, sched: sched, run: run}
	j.id = s.cron.Schedule(sched.next, robfig.FuncJob(func() { s.tick(j) }))
	s.jobs = append(s.jobs, j)
	s.byName[name] = j
	return nil
}

// Start begins ticking. It returns at once; calling it again, or after Stop
// or Drain, does nothing.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closing {
		return
	}
	s.started = true
	// Under mu so that a concurrent Stop either sees started and stops the
	// ticker, or happens first and this call sees closing.
	s.cron.Start()
}

// RunNow starts the named job at once, off schedule, and reports whether it
// did. It returns false for an unknown name, after Stop or Drain, and when
// the job is already running (which counts as a skip). It works before
// Start too; Stop and Drain wait for such runs like any other.
func (s *Scheduler) RunNow(name string) bool {
	s.mu.Lock()
	j := s.byName[name]
	s.mu.Unlock()
	if j == nil || !s.begin(j, "manual") {
		return false
	}
	go s.execute(j)
	return true
}

// Stop ends the scheduler: no new runs start, the context of every running
// job is cancelled, and Stop waits until those jobs (and their OnDone) have
// returned and the ticker has exited. Then it returns nil, and no goroutine
// of this package remains. If ctx ends first, Stop returns ctx.Err() and the
// stragglers finish on their own. Stop may be called any number of times,
// and after Drain.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.close()
	s.cancel()
	return s.wait(ctx)
}

// Drain is Stop without the cancellation, for a config reload: no new runs
// start, and running jobs are left to finish in their own time. It returns
// nil once they have, or ctx.Err() if ctx ends first; a later Stop can then
// cancel what is still running.
func (s *Scheduler) Drain(ctx context.Context) error {
	s.close()
	if err := s.wait(ctx); err != nil {
		return err
	}
	// Nothing runs any more, so this only releases the context.
	s.cancel()
	return nil
}

// Status returns a snapshot of every job, in Add order.
func (s *Scheduler) Status() []Status {
	next := s.plannedNext()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.jobs))
	for i, j := range s.jobs {
		out[i] = s.statusLocked(j, next)
	}
	return out
}

// close stops new runs and the ticker, once.
func (s *Scheduler) close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		if s.active == 0 {
			s.closeIdleLocked()
		}
		s.mu.Unlock()
		// Outside mu: robfig's Stop waits for its loop, and must not queue
		// behind a run that is recording its result.
		s.cronDone = s.cron.Stop()
	})
}

// wait blocks until no run is in flight and robfig's goroutines are gone,
// or ctx ends. Finished work wins over an expired ctx.
func (s *Scheduler) wait(ctx context.Context) error {
	for _, done := range []<-chan struct{}{s.idle, s.cronDone.Done()} {
		select {
		case <-done:
			continue
		default:
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *Scheduler) closeIdleLocked() {
	if !s.idleClosed {
		s.idleClosed = true
		close(s.idle)
	}
}

// tick is robfig's job for j, called on its own goroutine at every
// activation.
func (s *Scheduler) tick(j *job) {
	if s.begin(j, "schedule") {
		s.execute(j)
	}
}

// begin claims j for one run, or counts and logs a skip. A true result
// obliges the caller to call execute.
func (s *Scheduler) begin(j *job, trigger string) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if j.running {
		j.skipped++
		n := j.skipped
		s.mu.Unlock()
		s.log.Info("job still running, run skipped", "job", j.name, "trigger", trigger, "skipped", n)
		return false
	}
	j.running = true
	j.lastStart = s.now()
	s.active++
	s.mu.Unlock()
	return true
}

// execute runs j once and records the result. The bookkeeping is deferred
// so that it happens even if the job ends its goroutine with
// runtime.Goexit.
func (s *Scheduler) execute(j *job) {
	ctx, cancel := context.WithCancel(s.ctx)
	started := time.Now()
	var (
		err      error
		panicked bool
		finished bool
	)
	defer func() {
		cancel()
		if !finished && !panicked {
			err = errors.New("job ended its goroutine (runtime.Goexit)")
		}
		s.finish(j, err, panicked, time.Since(started))
	}()
	s.log.Debug("job started", "job", j.name)
	panicked, err = s.call(ctx, j)
	finished = true
}

// call runs the job, turning a panic into an error.
func (s *Scheduler) call(ctx context.Context, j *job) (panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked, err = true, fmt.Errorf("panic: %v", r)
			s.log.Error("job panicked", "job", j.name, "err", err, "stack", string(debug.Stack()))
		}
	}()
	return false, j.run(ctx)
}

// finish records a run's result, reports it, and releases the run's slot.
func (s *Scheduler) finish(j *job, err error, panicked bool, took time.Duration) {
	switch {
	case panicked: // already logged with its stack
	case err != nil:
		s.log.Warn("job failed", "job", j.name, "took", took, "err", err)
	default:
		s.log.Info("job done", "job", j.name, "took", took)
	}
	next := s.plannedNext()
	s.mu.Lock()
	j.running = false
	j.lastEnd = s.now()
	j.runs++
	j.lastOK = err == nil
	j.lastErr = ""
	if err != nil {
		j.lastErr = err.Error()
	}
	st := s.statusLocked(j, next)
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.active--
		if s.closing && s.active == 0 {
			s.closeIdleLocked()
		}
		s.mu.Unlock()
	}()
	if s.onDone != nil {
		s.notify(st)
	}
}

func (s *Scheduler) notify(st Status) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("OnDone panicked", "job", st.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	s.onDone(st)
}

// plannedNext returns robfig's next activation per entry while the ticker
// runs, and nil otherwise. It must be called without mu: it may wait for
// the ticker loop.
func (s *Scheduler) plannedNext() map[robfig.EntryID]time.Time {
	s.mu.Lock()
	ticking := s.started && !s.closing
	s.mu.Unlock()
	if !ticking {
		return nil
	}
	entries := s.cron.Entries()
	next := make(map[robfig.EntryID]time.Time, len(entries))
	for _, e := range entries {
		next[e.ID] = e.Next
	}
	return next
}

func (s *Scheduler) statusLocked(j *job, planned map[robfig.EntryID]time.Time) Status {
	st := Status{
		Name:      j.name,
		Schedule:  j.sched.String(),
		LastStart: j.lastStart,
		LastEnd:   j.lastEnd,
		LastErr:   j.lastErr,
		LastOK:    j.lastOK,
		Running:   j.running,
		Runs:      j.runs,
		Skipped:   j.skipped,
	}
	if !s.closing {
		if n, ok := planned[j.id]; ok {
			st.Next = n
		} else {
			st.Next = j.sched.Next(s.now())
		}
	}
	return st
}

// cronLogger routes robfig's logging into slog. Its info lines (every wake
// and schedule) are debug noise for us.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	l.log.Debug("cron: "+msg, keysAndValues...)
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error("cron: "+msg, append([]any{"err", err}, keysAndValues...)...)
}

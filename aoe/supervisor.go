package aoe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Supervisor runs one vblade per export of a vbladed.conf and keeps them
// running. Its zero value plus RunDir and ConfigPath is ready to use; every
// other field has a documented default.
type Supervisor struct {
	// Vblade is the vblade binary, looked up in PATH at start when it has
	// no slash. Default "vblade".
	Vblade string
	// RunDir holds the supervisor's files in RunDir/aoe (created 0700):
	// supervisor.pid, and per export <alias>.json (state), <alias>.stopped
	// (stop mark), <alias>.start and <alias>.restart (requests).
	RunDir string
	// ConfigPath is the vbladed.conf, read at start and again before every
	// (re)start of an export, so that a restart applies a changed file.
	ConfigPath string
	// Load reads the config; nil means Load.
	Load func(path string) (*Config, error)
	// Logger receives the supervisor's events and every line vblade
	// writes (with its alias); nil discards them.
	Logger *slog.Logger
	// Notify, if set, receives the line "started vblade for ALIAS (pid:N
	// file:F iface:I mac:M1,M2)" on every start, for stderr and syslog. It
	// is called from Run's goroutine and should not block.
	Notify func(line string)
	// MinUptime: a vblade that exits sooner failed to start. Default 1 s.
	MinUptime time.Duration
	// Backoff is the delay before the first restart after an exit; it
	// doubles with every further exit in a row. Default 1 s.
	Backoff time.Duration
	// MaxBackoff caps the restart delay. Default 60 s.
	MaxBackoff time.Duration
	// StableAfter: a vblade that stayed up this long counts as healthy, and
	// its next exit starts the backoff over. Default 10 s.
	StableAfter time.Duration
	// Poll is how often the run directory is read for stop marks and
	// start/restart requests. Default 1 s.
	Poll time.Duration
	// StopTimeout is how long a vblade gets between SIGTERM and SIGKILL.
	// Default 5 s.
	StopTimeout time.Duration
}

// FlapAfter is the number of exits in a row (without a stable run) from
// which an export is reported as flapping.
const FlapAfter = 3

// maxLine caps one logged line of vblade output; the rest of a longer line
// is dropped, never left in the pipe.
const maxLine = 4096

// withDefaults returns a copy of s with every default filled in.
func (s *Supervisor) withDefaults() Supervisor {
	o := *s
	if o.Vblade == "" {
		o.Vblade = "vblade"
	}
	if o.Load == nil {
		o.Load = Load
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinUptime, time.Second)
	def(&o.Backoff, time.Second)
	def(&o.MaxBackoff, 60*time.Second)
	def(&o.StableAfter, 10*time.Second)
	def(&o.Poll, time.Second)
	def(&o.StopTimeout, stopTimeout)
	return o
}

// Run loads the config, takes the pid file RunDir/aoe/supervisor.pid,
// starts every export that has no stop mark, and supervises them until ctx
// is cancelled. Then it stops every vblade (SIGTERM, SIGKILL after
// StopTimeout), records them stopped, removes the pid file and returns nil.
//
// Errors come only before anything starts: the error of Load as it is (so
// errors.As finds *ParseError or ErrorList), a vblade binary that cannot be
// found, a run directory that cannot be used, or ErrSupervisorRunning when
// another live supervisor holds the pid file.
//
// A vblade left running by an earlier supervisor that died, or started by
// Start without a supervisor, is stopped (after the pid check Stop does)
// and replaced by a child Run watches.
//
// Every (re)start re-reads the config. When that fails, the last good
// config is used and the error is logged and kept in last_error. An exit
// restarts the export after a backoff (Backoff doubled per exit in a row, at
// most MaxBackoff, reset after StableAfter of uptime); an exit within
// MinUptime is recorded as a start failure, and from the third exit in a
// row the export is logged at Warn as flapping. Stop marks and start or
// restart requests are read every Poll. All goroutines Run starts have
// ended when it returns.
func (s *Supervisor) Run(ctx context.Context) error {
	o := s.withDefaults()
	cfg, err := o.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(o.Vblade)
	if err != nil {
		return fmt.Errorf("aoe: find vblade: %w", err)
	}
	dir := aoeDir(o.RunDir)
	if err := ensureDir(dir); err != nil {
		return err
	}
	pidFile, err := acquirePIDFile(dir)
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(pidFile.Name())
		pidFile.Close()
	}()
	r := &run{
		s:        &o,
		log:      o.Logger,
		dir:      dir,
		vblade:   bin,
		cfg:      cfg,
		children: map[string]*child{},
		exits:    make(chan exitEvent),
	}
	r.log.Info("aoe supervisor started", "config", o.ConfigPath, "exports", len(cfg.Exports), "pid", os.Getpid())
	r.dropStaleRequests()
	for _, e := range cfg.Exports {
		c := r.child(e.Alias)
		if marked(dir, e.Alias) {
			c.exp, c.shelf = e, cfg.Shelf
			r.log.Info("export is marked stopped; not starting it", "alias", e.Alias)
			r.setState(c, StateStopped)
			continue
		}
		r.start(c, false, "")
	}
	r.loop(ctx)
	r.log.Info("aoe supervisor stopped")
	return nil
}

// acquirePIDFile opens, locks and fills the pid file of dir. A short retry
// absorbs the shared lock Status and Start take for an instant to probe
// for a supervisor; the inode check makes sure the locked file is the one
// the path names (a supervisor that was exiting may have just removed it).
func acquirePIDFile(dir string) (*os.File, error) {
	path := filepath.Join(dir, pidFileName)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
		if err != nil {
			return nil, fmt.Errorf("aoe: pid file: %w", err)
		}
		err = flockNB(f, syscall.LOCK_EX)
		if errors.Is(err, errLocked) {
			f.Close()
			if attempt < 10 {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			b, _ := os.ReadFile(path)
			return nil, fmt.Errorf("%w (pid %s, %s)", ErrSupervisorRunning, strings.TrimSpace(string(b)), path)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("aoe: pid file: %w", err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(held, named) {
			f.Close()
			if attempt < 100 {
				continue
			}
			return nil, fmt.Errorf("aoe: pid file %s keeps changing", path)
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("aoe: pid file: %w", err)
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("aoe: pid file: %w", err)
		}
		return f, nil
	}
}

// run is the state of one Supervisor.Run. Only Run's goroutine touches it;
// the per-child goroutines only send on exits.
type run struct {
	s        *Supervisor
	log      *slog.Logger
	dir      string
	vblade   string
	cfg      *Config // the last config that loaded without error
	children map[string]*child
	exits    chan exitEvent
	// live counts children started and not yet reported on exits.
	live int
}

// after says what to do once a child we signalled has exited.
type after int

const (
	thenStay  after = iota // stay stopped
	thenStart              // start again at once (restart request)
)

// child is one export under supervision.
type child struct {
	alias    string
	exp      Export
	shelf    int
	argv     []string
	id       identity
	proc     *os.Process // nil when no vblade runs
	gen      int         // counts starts; matches exit events to starts
	state    string
	since    time.Time
	started  time.Time
	starts   int
	failures int
	exitErr  string    // why vblade last exited or failed to start
	cfgErr   string    // why the config was not applied at the last start
	retryAt  time.Time // end of the backoff (StateBackoff)
	stopping bool      // we signalled it and wait for its exit
	then     after
	killAt   time.Time // SIGKILL deadline while stopping
	request  string    // last request acted on, echoed in the state file
	// pending is a request still to be answered: by the start that
	// follows the stop in progress, or, when a stop mark overtook the
	// request, by the state file that shows the export stopped.
	pending string
	// markSeen is the content of the stop mark last seen while no vblade
	// ran, echoed in the state file for Stop; "" once the mark is gone.
	markSeen string
}

// exitEvent reports that the child of a start has exited.
type exitEvent struct {
	alias string
	gen   int
	err   error  // from Wait
	last  string // last line vblade wrote, for last_error
}

// child returns the child of alias, creating it.
func (r *run) child(alias string) *child {
	c := r.children[alias]
	if c == nil {
		c = &child{alias: alias, state: StateStopped}
		r.children[alias] = c
	}
	return c
}

// dropStaleRequests removes request files left by an earlier supervisor;
// their senders stopped waiting long ago, and this run starts every
// export that is not marked anyway.
func (r *run) dropStaleRequests() {
	entries, _ := os.ReadDir(r.dir)
	for _, de := range entries {
		n := de.Name()
		if strings.HasSuffix(n, startSuffix) || strings.HasSuffix(n, reloadSuffix) {
			os.Remove(filepath.Join(r.dir, n))
		}
	}
}

// loop is Run's event loop; it returns after the shutdown.
func (r *run) loop(ctx context.Context) {
	tick := time.NewTicker(r.s.Poll)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next, ok := r.nextDeadline(); ok {
			timer.Reset(max(time.Until(next), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			r.shutdown()
			return
		case ev := <-r.exits:
			r.exited(ev)
		case <-tick.C:
			r.poll()
			r.due()
		case <-timer.C:
			r.due()
		}
	}
}

// nextDeadline returns the earliest time something is due: the end of a
// backoff, the end of MinUptime, or a SIGKILL.
func (r *run) nextDeadline() (time.Time, bool) {
	var next time.Time
	add := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, c := range r.children {
		switch {
		case c.stopping:
			add(c.killAt)
		case c.state == StateBackoff:
			add(c.retryAt)
		case c.state == StateStarting:
			add(c.started.Add(r.s.MinUptime))
		}
	}
	return next, !next.IsZero()
}

// due acts on every deadline that has passed.
func (r *run) due() {
	now := time.Now()
	for _, c := range r.children {
		switch {
		case c.stopping:
			if !c.killAt.IsZero() && !now.Before(c.killAt) && c.proc != nil {
				r.log.Warn("vblade did not exit after SIGTERM; sending SIGKILL", "alias", c.alias, "pid", c.proc.Pid)
				_ = c.proc.Signal(syscall.SIGKILL)
				c.killAt = time.Time{}
			}
		case c.state == StateBackoff && !now.Before(c.retryAt):
			if marked(r.dir, c.alias) {
				r.stayStopped(c)
				continue
			}
			r.start(c, true, "")
		case c.state == StateStarting && now.Sub(c.started) >= r.s.MinUptime:
			r.setState(c, StateRunning)
		}
	}
}

// poll reads the run directory for stop marks and start/restart requests.
func (r *run) poll() {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Error("cannot read run directory", "dir", r.dir, "err", err)
		return
	}
	marks := map[string]bool{}
	for _, de := range entries {
		if a, ok := strings.CutSuffix(de.Name(), markSuffix); ok {
			marks[a] = true
		}
	}
	for _, de := range entries {
		name := de.Name()
		var restart bool
		alias, ok := strings.CutSuffix(name, startSuffix)
		if !ok {
			alias, ok = strings.CutSuffix(name, reloadSuffix)
			restart = true
		}
		if !ok || strings.HasPrefix(name, ".") || checkAliasName(alias) != nil {
			continue
		}
		path := filepath.Join(r.dir, name)
		b, err := os.ReadFile(path)
		os.Remove(path)
		if err != nil {
			continue
		}
		r.request(alias, restart, strings.TrimSpace(string(b)), marks[alias])
	}
	for a := range marks {
		if r.children[a] == nil && checkAliasName(a) == nil {
			r.adoptMarked(a)
		}
	}
	for _, c := range r.children {
		if !marks[c.alias] {
			c.markSeen = ""
			continue
		}
		switch {
		case c.proc != nil && !c.stopping:
			r.log.Info("export marked stopped; stopping vblade", "alias", c.alias, "pid", c.proc.Pid)
			r.signal(c, thenStay, c.pending)
		case c.stopping && c.then == thenStart:
			// A restart in progress: it ends stopped, and its requester
			// is answered then (not left waiting for a start that never
			// comes).
			c.then = thenStay
		case c.proc == nil:
			r.ackMark(c)
		}
	}
}

// ackMark records c stopped (ending a backoff, answering a request the
// mark overtook) and echoes the content of its stop mark in the state
// file. c has no vblade, and every start checks the mark first, so from
// this write until the mark goes none is started: that is what Stop waits
// for.
func (r *run) ackMark(c *child) {
	tok, ok := readMark(r.dir, c.alias)
	if !ok {
		return
	}
	if tok == c.markSeen && c.state == StateStopped && c.pending == "" {
		return
	}
	c.markSeen = tok
	r.stayStopped(c)
}

// adoptMarked takes on an alias this run has no child for (not in the
// config) that carries a stop mark and has a state file, so that the
// state file echoes the mark Stop waits for. A state file naming a live
// vblade is left alone: this run did not start it and must not hide it.
func (r *run) adoptMarked(alias string) {
	st, err := readState(r.dir, alias)
	if err != nil {
		return
	}
	if st.PID > 0 {
		if ok, _, _ := verify(st.PID, st.identity); ok {
			return
		}
	}
	c := r.child(alias)
	c.shelf, c.exp.Slot, c.since, c.request = st.Shelf, st.Slot, st.Since, st.Request
}

// request acts on a start or restart request for alias. A start request
// for a running export only acknowledges it.
func (r *run) request(alias string, restart bool, nonce string, isMarked bool) {
	c := r.child(alias)
	if isMarked {
		// Stop came after the request; the mark wins. poll answers the
		// request once the export is stopped.
		r.log.Info("ignoring request for an export marked stopped", "alias", alias)
		c.pending = nonce
		return
	}
	kind := "start"
	if restart {
		kind = "restart"
	}
	r.log.Info(kind+" request", "alias", alias)
	switch {
	case c.stopping:
		c.then, c.pending = thenStart, nonce
	case c.proc != nil && restart:
		r.signal(c, thenStart, nonce)
	case c.proc != nil:
		c.request = nonce
		r.writeState(c)
	default:
		c.failures, c.exitErr = 0, ""
		r.start(c, true, nonce)
	}
}

// signal asks the vblade of c to exit (SIGTERM now, SIGKILL after
// StopTimeout) and records what to do after its exit.
func (r *run) signal(c *child, then after, nonce string) {
	c.stopping, c.then, c.pending = true, then, nonce
	c.killAt = time.Now().Add(r.s.StopTimeout)
	if err := c.proc.Signal(syscall.SIGTERM); err != nil {
		r.log.Warn("cannot signal vblade", "alias", c.alias, "pid", c.proc.Pid, "err", err)
	}
}

// start (re)starts the export of c. reload re-reads the config first; the
// initial starts use the config Run just loaded. nonce is the request this
// start answers, if any.
func (r *run) start(c *child, reload bool, nonce string) {
	if nonce != "" {
		// Kept across the automatic restarts that follow, so the
		// requester sees how its start ended.
		c.request = nonce
	}
	if reload {
		c.cfgErr = ""
		cfg, err := r.s.Load(r.s.ConfigPath)
		if err != nil {
			r.log.Error("cannot re-read the exports; using the last good config", "config", r.s.ConfigPath, "err", err)
			c.cfgErr = fmt.Sprintf("config %s not applied: %v", r.s.ConfigPath, err)
		} else {
			r.cfg = cfg
		}
	}
	exp, ok := r.cfg.Export(c.alias)
	if !ok {
		r.log.Error("export is not in the config; not starting it", "alias", c.alias, "config", r.s.ConfigPath)
		c.exitErr = fmt.Sprintf("not in %s", r.s.ConfigPath)
		r.setState(c, StateFailed)
		return
	}
	c.exp, c.shelf = exp, r.cfg.Shelf
	r.replaceLeftover(c)
	c.argv = exp.Argv(r.vblade, c.shelf)
	// The last look at the mark before the start, whatever asked for it
	// (a request read before the mark came, a backoff, a restart): a
	// stop mark always wins. One written after this look is seen at the
	// next poll, which stops this vblade; Stop waits for that.
	if marked(r.dir, c.alias) {
		r.log.Info("export is marked stopped; not starting it", "alias", c.alias)
		c.exitErr = ""
		r.stayStopped(c)
		return
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		r.failed(c, 0, fmt.Sprintf("start: %v", err))
		return
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group: a Ctrl-C at the supervisor's terminal reaches
	// the supervisor only, which then stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		r.failed(c, 0, fmt.Sprintf("start failure: %v", err))
		return
	}
	now := time.Now()
	// Start returns after the exec, so /proc shows vblade (unless it has
	// already exited, and then nobody will signal it).
	c.id, _ = startedIdentity(cmd.Process.Pid)
	c.proc, c.started, c.stopping, c.killAt = cmd.Process, now, false, time.Time{}
	c.gen++
	c.starts++
	r.live++
	r.setState(c, StateStarting)
	macs := strings.Join(exp.MACs, ",")
	if macs == "" {
		macs = anyMACs
	}
	r.log.Info("started vblade", "alias", c.alias, "pid", c.proc.Pid, "argv", c.argv)
	r.s.Notify(fmt.Sprintf("started vblade for %s (pid:%d file:%s iface:%s mac:%s)", c.alias, c.proc.Pid, exp.File, exp.Iface, macs))
	go r.wait(cmd, pr, c.alias, c.gen, c.proc.Pid)
}

// anyMACs is what the start line shows for an export without -m.
const anyMACs = "any"

// wait logs the output of one vblade, waits for its exit and reports it on
// r.exits. It ends once Run has received that report; Run receives every
// report before it returns.
func (r *run) wait(cmd *exec.Cmd, out *os.File, alias string, gen, pid int) {
	var last string
	done := make(chan struct{})
	go func() {
		defer close(done)
		last = r.copyLines(out, alias, pid)
	}()
	err := cmd.Wait()
	// vblade is gone; what it wrote is in the pipe. A process that
	// inherited the pipe could keep it open forever, so give the reader a
	// moment to drain and then close it.
	t := time.NewTimer(time.Second)
	select {
	case <-done:
	case <-t.C:
		out.Close()
		<-done
	}
	t.Stop()
	out.Close()
	r.exits <- exitEvent{alias: alias, gen: gen, err: err, last: last}
}

// copyLines logs every line read from out and returns the last non-empty
// one. Lines longer than maxLine are cut, and the rest is drained so vblade
// never blocks on a full pipe.
func (r *run) copyLines(out io.Reader, alias string, pid int) string {
	br := bufio.NewReaderSize(out, maxLine)
	var last string
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 {
			text := strings.TrimSpace(string(line))
			if text != "" {
				last = text
				r.log.Info("vblade: "+text, "alias", alias, "pid", pid)
			}
		}
		for isPrefix && err == nil {
			_, isPrefix, err = br.ReadLine()
		}
		if err != nil {
			return last
		}
	}
}

// exited handles the exit of a child.
func (r *run) exited(ev exitEvent) {
	r.live--
	c := r.children[ev.alias]
	if c == nil || c.gen != ev.gen {
		return
	}
	up := time.Since(c.started)
	pid := c.proc.Pid
	c.proc, c.id = nil, identity{}
	desc := describeExit(ev.err, up, ev.last)
	if c.stopping {
		c.stopping, c.killAt = false, time.Time{}
		r.log.Info("vblade stopped", "alias", c.alias, "pid", pid, "status", desc)
		c.exitErr = ""
		if c.then == thenStart && !marked(r.dir, c.alias) {
			c.failures = 0
			nonce := c.pending
			c.pending = ""
			r.start(c, true, nonce)
			return
		}
		r.stayStopped(c)
		return
	}
	if marked(r.dir, c.alias) {
		r.log.Info("vblade exited; export is marked stopped", "alias", c.alias, "pid", pid, "status", desc)
		c.exitErr = ""
		r.stayStopped(c)
		return
	}
	if up >= r.s.StableAfter {
		c.failures = 0
	}
	msg := desc
	if up < r.s.MinUptime {
		msg = "start failure: " + desc
	}
	r.failed(c, pid, msg)
}

// stayStopped records c stopped and answers a request the stop overtook:
// its requester sees the export stopped instead of waiting for a start.
func (r *run) stayStopped(c *child) {
	if c.pending != "" {
		c.request, c.pending = c.pending, ""
	}
	r.setState(c, StateStopped)
}

// failed puts c in backoff after a failed start or an exit.
func (r *run) failed(c *child, pid int, msg string) {
	c.proc = nil
	c.failures++
	delay := r.s.Backoff
	for i := 1; i < c.failures && delay < r.s.MaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, r.s.MaxBackoff)
	c.retryAt = time.Now().Add(delay)
	if c.failures >= FlapAfter {
		msg = fmt.Sprintf("flapping: %d failures in a row, next start in %s; last: %s", c.failures, delay, msg)
		r.log.Warn("vblade is flapping", "alias", c.alias, "pid", pid, "failures", c.failures, "retry_in", delay, "err", msg)
	} else {
		r.log.Warn("vblade exited; restarting after backoff", "alias", c.alias, "pid", pid, "failures", c.failures, "retry_in", delay, "err", msg)
	}
	c.exitErr = msg
	r.setState(c, StateBackoff)
}

// describeExit says how a child ended: how long it ran, the exit status,
// and the last line it wrote (vblade prints why it cannot start just
// before it exits; after a long run the line may be its start line).
func describeExit(err error, up time.Duration, last string) string {
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	s := fmt.Sprintf("exited after %s: %s", up.Round(time.Millisecond), status)
	if last != "" {
		s += fmt.Sprintf(" (last output: %q)", last)
	}
	return s
}

// joinErr joins non-empty messages with "; ".
func joinErr(msgs ...string) string {
	var out []string
	for _, m := range msgs {
		if m != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, "; ")
}

// replaceLeftover stops a vblade of c's alias that this run did not start
// (its state file names a live vblade: an unsupervised start, or a child
// of a supervisor that died), so that two vblade never serve one export.
// The pid is checked as Stop checks it.
func (r *run) replaceLeftover(c *child) {
	st, err := readState(r.dir, c.alias)
	if err != nil || st.PID <= 0 || (c.proc != nil && st.PID == c.proc.Pid) {
		return
	}
	if ok, _, _ := verify(st.PID, st.identity); !ok {
		return
	}
	r.log.Info("stopping a vblade this supervisor did not start", "alias", c.alias, "pid", st.PID)
	if err := terminate(st.PID, st.identity, r.s.StopTimeout); err != nil {
		r.log.Warn("cannot stop the earlier vblade", "alias", c.alias, "pid", st.PID, "err", err)
	}
}

// setState changes the state of c and writes its state file.
func (r *run) setState(c *child, state string) {
	if state != c.state || c.since.IsZero() {
		c.since = time.Now()
	}
	c.state = state
	if state != StateBackoff {
		c.retryAt = time.Time{}
	}
	r.writeState(c)
}

// writeState writes the state file of c. A failure is logged: the
// exports keep running without it.
func (r *run) writeState(c *child) {
	st := &stateFile{
		Alias: c.alias, Shelf: c.shelf, Slot: c.exp.Slot, State: c.state,
		Restarts: max(c.starts-1, 0), Since: c.since, LastError: joinErr(c.cfgErr, c.exitErr),
		Supervised: true, Failures: c.failures, Request: c.request,
		StopMark: c.markSeen,
	}
	if c.proc != nil {
		st.PID, st.Argv, st.identity = c.proc.Pid, c.argv, c.id
	}
	if err := writeState(r.dir, st); err != nil {
		r.log.Error("cannot write state file", "alias", c.alias, "err", err)
	}
}

// shutdown stops every child: SIGTERM, SIGKILL after StopTimeout, and
// waits for every exit report, so no goroutine of the run is left.
func (r *run) shutdown() {
	for _, c := range r.children {
		if c.proc != nil {
			c.stopping, c.then = true, thenStay
			_ = c.proc.Signal(syscall.SIGTERM)
		}
	}
	kill := time.NewTimer(r.s.StopTimeout)
	defer kill.Stop()
	for r.live > 0 {
		select {
		case ev := <-r.exits:
			r.live--
			if c := r.children[ev.alias]; c != nil && c.gen == ev.gen {
				r.log.Info("vblade stopped", "alias", c.alias, "pid", c.proc.Pid, "status", describeExit(ev.err, time.Since(c.started), ev.last))
				c.proc, c.stopping = nil, false
			}
		case <-kill.C:
			for _, c := range r.children {
				if c.proc != nil {
					r.log.Warn("vblade did not exit after SIGTERM; sending SIGKILL", "alias", c.alias, "pid", c.proc.Pid)
					_ = c.proc.Signal(syscall.SIGKILL)
				}
			}
		}
	}
	for _, c := range r.children {
		if c.state != StateStopped || c.pending != "" {
			r.stayStopped(c)
		}
	}
}

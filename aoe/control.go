package aoe

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"opsagent/internal/atomicfile"
)

// Errors of the start/stop control. Callers classify them with errors.Is.
var (
	// ErrSupervisorRunning: Supervisor.Run found the pid file locked by a
	// live supervisor for the same run directory.
	ErrSupervisorRunning = errors.New("aoe: a supervisor is already running")
	// ErrStalePID: the state file names a pid that no longer belongs to
	// that export's vblade, so nothing was signalled.
	ErrStalePID = errors.New("aoe: recorded pid is not that vblade any more")
	// ErrUnknownAlias: the alias is not an export of the config given.
	ErrUnknownAlias = errors.New("aoe: no such export")
	// ErrAliasName: the alias cannot name files under the run directory.
	ErrAliasName = errors.New("aoe: invalid alias")
	// ErrNotStarted: vblade did not come up (it exited at once, or the
	// supervisor did not report it running in time). The message carries
	// the last error the supervisor recorded.
	ErrNotStarted = errors.New("aoe: vblade did not start")
	// ErrStillRunning: vblade was signalled but did not exit, even after
	// SIGKILL.
	ErrStillRunning = errors.New("aoe: vblade did not exit")
	// ErrStopOverridden: while Stop waited for the supervisor, a later
	// Start or Restart cleared its stop mark, so the export may run.
	ErrStopOverridden = errors.New("aoe: a later start or restart cleared the stop mark")
)

// States of an export, as kept in its state file and shown by Status.
const (
	// StateStarting: vblade runs but has not yet stayed up MinUptime.
	StateStarting = "starting"
	// StateRunning: vblade runs and stayed up at least MinUptime (or was
	// started unsupervised and survived the start check).
	StateRunning = "running"
	// StateBackoff: vblade exited; the supervisor starts it again at the
	// end of the backoff. LastError says why it exited.
	StateBackoff = "backoff"
	// StateStopped: no vblade, on purpose (stop mark, supervisor shutdown,
	// or never started).
	StateStopped = "stopped"
	// StateFailed: the supervisor cannot start the export and will not
	// retry until asked (the alias left the config).
	StateFailed = "failed"
	// StateDead: only reported by Status: the state file says a vblade
	// runs (or a supervisor will restart it) but that process or that
	// supervisor is gone.
	StateDead = "dead"
	// StateUnknown: only reported by Status: the state file is unreadable,
	// or /proc cannot tell whether its vblade runs; LastError says why.
	StateUnknown = "unknown"
)

// Names of the files under RunDir/aoe.
const (
	subDir       = "aoe"
	pidFileName  = "supervisor.pid"
	stateSuffix  = ".json"
	markSuffix   = ".stopped"
	startSuffix  = ".start"
	reloadSuffix = ".restart"
	logSuffix    = ".log"
	// dirMode keeps pids, argvs (with the MAC lists) and logs to root.
	dirMode = 0o700
	// fileMode is the mode of every file the package creates.
	fileMode = 0o600
)

// Timing of the control commands.
const (
	// stopTimeout is how long a vblade gets between SIGTERM and SIGKILL.
	stopTimeout = 5 * time.Second
	// killWait is how long to wait for the exit after SIGKILL.
	killWait = 2 * time.Second
	// startWait is how long Start waits for the supervisor to report the
	// export running (its poll plus MinUptime, with the defaults 1 s each).
	startWait = 3 * time.Second
	// unsupervisedCheck is how long Start watches an unsupervised vblade
	// before it calls it running: an exit sooner is a start failure, as
	// with MinUptime under a supervisor.
	unsupervisedCheck = time.Second
	// supervisorLag is how long a supervisor may take to see a stop mark
	// (its poll, 1 s by default) beyond the stop of the vblade itself.
	supervisorLag = 2 * time.Second
	// waitStep is the poll interval of the control commands.
	waitStep = 20 * time.Millisecond
)

// ExportStatus is one export as Status reports it. Its JSON form is the
// contract of `agent aoe status --json`.
type ExportStatus struct {
	// Alias names the export.
	Alias string `json:"alias"`
	// Shelf and Slot are the AoE address (of the running vblade when there
	// is one, else from the config).
	Shelf int `json:"shelf"`
	Slot  int `json:"slot"`
	// PID is the vblade process; 0 when none was started.
	PID int `json:"pid"`
	// State is one of the State* constants.
	State string `json:"state"`
	// Restarts counts the starts after the first by one supervisor (an
	// automatic restart after an exit, or a requested restart).
	Restarts int `json:"restarts"`
	// Since is when the export entered State; zero when never started.
	Since time.Time `json:"since"`
	// LastError says why vblade last exited or could not start.
	LastError string `json:"last_error"`
	// Failures counts the exits in a row without a stable run; from
	// FlapAfter on the export is flapping.
	Failures int `json:"failures,omitempty"`
}

// Flapping reports whether the export's vblade exited FlapAfter times or
// more in a row without a stable run.
func (e ExportStatus) Flapping() bool { return e.Failures >= FlapAfter }

// stateFile is RunDir/aoe/<alias>.json. The supervisor writes it for its
// children, Start and Stop write it only when no supervisor runs.
type stateFile struct {
	Alias     string    `json:"alias"`
	Shelf     int       `json:"shelf"`
	Slot      int       `json:"slot"`
	PID       int       `json:"pid"`
	State     string    `json:"state"`
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error"`
	// Argv is the exact argv vblade was started with.
	Argv []string `json:"argv,omitempty"`
	// Identity, read from /proc right after the start, is compared with
	// the live process before any signal.
	identity
	// Supervised is false for a vblade started by Start without a
	// supervisor: nothing restarts it.
	Supervised bool `json:"supervised"`
	// Failures counts the exits in a row without a stable run.
	Failures int `json:"failures,omitempty"`
	// Request echoes the last start/restart request the supervisor acted
	// on, so the requester knows its request was seen.
	Request string `json:"request,omitempty"`
	// StopMark echoes the content of the stop mark the supervisor saw
	// while no vblade of the export ran: from then on it starts none until
	// the mark goes, so Stop knows nothing is left running or starting.
	StopMark string `json:"stop_mark,omitempty"`
}

// checkAliasName refuses aliases that cannot name a file under the run
// directory. Config aliases are stricter still (see Parse); this guards
// the control functions, which also take aliases from the command line.
func checkAliasName(alias string) error {
	if alias == "" || strings.HasPrefix(alias, ".") || strings.ContainsAny(alias, "/\x00") || len(alias) > 255-len(".restart.tmp-0000000000") {
		return fmt.Errorf("%w: %q", ErrAliasName, alias)
	}
	return nil
}

// aoeDir returns RunDir/aoe.
func aoeDir(runDir string) string { return filepath.Join(runDir, subDir) }

// ensureDir creates RunDir/aoe with mode 0700.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("aoe: create run directory: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path (0600) so readers see the old or the
// new content, never a part.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, fileMode); err != nil {
		return fmt.Errorf("aoe: %w", err)
	}
	return nil
}

// writeState writes the state file of st.Alias.
func writeState(dir string, st *stateFile) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("aoe: encode state of %s: %w", st.Alias, err)
	}
	return writeFileAtomic(filepath.Join(dir, st.Alias+stateSuffix), append(b, '\n'))
}

// readState reads the state file of alias; an error wrapping
// fs.ErrNotExist means there is none.
func readState(dir, alias string) (*stateFile, error) {
	path := filepath.Join(dir, alias+stateSuffix)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("aoe: read %s: %w", path, err)
	}
	return &st, nil
}

// marked reports whether alias carries the stop mark.
func marked(dir, alias string) bool {
	_, err := os.Lstat(filepath.Join(dir, alias+markSuffix))
	return err == nil
}

// readMark returns the content of the stop mark of alias, trimmed; ok is
// false when there is none.
func readMark(dir, alias string) (token string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, alias+markSuffix))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// removeMark removes the stop mark of alias, if any.
func removeMark(dir, alias string) error {
	err := os.Remove(filepath.Join(dir, alias+markSuffix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("aoe: remove stop mark: %w", err)
	}
	return nil
}

// supervisorPID reports whether a live supervisor holds the pid file of
// dir, and its pid. A supervisor holds an exclusive flock for its whole
// run; a shared lock that succeeds means the file is stale. The shared lock
// is dropped at once, and a supervisor that starts at that very moment
// retries its own lock, so the probe never makes it fail.
func supervisorPID(dir string) (pid int, running bool, err error) {
	f, err := os.Open(filepath.Join(dir, pidFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("aoe: %w", err)
	}
	defer f.Close()
	switch err := flockNB(f, syscall.LOCK_SH); {
	case errors.Is(err, errLocked):
		b, _ := os.ReadFile(f.Name())
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid, true, nil
	case err != nil:
		return 0, false, fmt.Errorf("aoe: %w", err)
	}
	funlock(f)
	return 0, false, nil
}

// newNonce returns a random token that ties a request file to the state
// file update that answers it.
func newNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// request asks the running supervisor to act on alias (suffix startSuffix
// or reloadSuffix) and returns the nonce the supervisor will echo.
func request(dir, alias, suffix string) (string, error) {
	nonce := newNonce()
	if err := writeFileAtomic(filepath.Join(dir, alias+suffix), []byte(nonce+"\n")); err != nil {
		return "", err
	}
	return nonce, nil
}

// awaitRequest waits until the supervisor answered the request nonce of
// alias with a settled state: running is success, anything else an error
// carrying the supervisor's last error.
func awaitRequest(dir, alias, nonce string, supPID int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	var last *stateFile
	for {
		if st, err := readState(dir, alias); err == nil && st.Request == nonce {
			last = st
			switch st.State {
			case StateRunning:
				return st.PID, nil
			case StateStarting:
			case StateStopped:
				// A stop mark (a Stop after this request) or the
				// supervisor's shutdown overtook the request.
				why := "the supervisor stopped"
				if marked(dir, alias) {
					why = "a stop came before it ran again"
				}
				return 0, fmt.Errorf("%w: %s stopped: %s", ErrNotStarted, alias, why)
			default:
				return 0, fmt.Errorf("%w: %s %s: %s", ErrNotStarted, alias, st.State, st.LastError)
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(waitStep)
	}
	if last != nil && last.State == StateStarting {
		// Up, but not yet MinUptime: the supervisor watches the rest.
		return last.PID, nil
	}
	return 0, fmt.Errorf("%w: %s: no answer from the supervisor (pid %d) within %s", ErrNotStarted, alias, supPID, timeout)
}

// terminate stops the process pid after checking it is still the process
// described by id: SIGTERM, up to grace for it to exit, then SIGKILL. A pid
// that is no longer that process is never signalled (ErrStalePID).
func terminate(pid int, id identity, grace time.Duration) error {
	ok, why, err := verify(pid, id)
	if err != nil {
		return fmt.Errorf("aoe: check pid %d: %w", pid, err)
	}
	if !ok {
		err := fmt.Errorf("%w: pid %d %s; nothing signalled", ErrStalePID, pid, why)
		if why == reasonGone {
			return goneError{err}
		}
		return err
	}
	if err := sendSignal(pid, syscall.SIGTERM); errors.Is(err, errGone) {
		return nil
	} else if err != nil {
		return fmt.Errorf("aoe: %w", err)
	}
	if waitGone(pid, id, grace) {
		return nil
	}
	// Check again: the pid must still be that vblade to get SIGKILL.
	if ok, _, _ := verify(pid, id); !ok {
		return nil
	}
	if err := sendSignal(pid, syscall.SIGKILL); err != nil && !errors.Is(err, errGone) {
		return fmt.Errorf("aoe: %w", err)
	}
	if waitGone(pid, id, killWait) {
		return nil
	}
	return fmt.Errorf("%w: pid %d", ErrStillRunning, pid)
}

// goneError is the ErrStalePID of a pid that runs nothing at all any more:
// errors.Is finds both ErrStalePID and errGone.
type goneError struct{ error }

func (e goneError) Unwrap() error        { return e.error }
func (e goneError) Is(target error) bool { return target == errGone }

// waitGone waits up to d for pid to stop being the process id.
func waitGone(pid int, id identity, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if ok, _, err := verify(pid, id); !ok && err == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(waitStep)
	}
}

// Stop marks alias stopped (RunDir/aoe/<alias>.stopped: no supervisor
// starts it again until Start or Restart) and then ends its vblade, if one
// runs. The pid from the state file is signalled only when /proc shows it
// is still that vblade (same executable, same command line, same start
// time); otherwise nothing is signalled and the error wraps ErrStalePID
// (the mark is written all the same). SIGTERM is followed by SIGKILL after
// 5 s. With no supervisor running, Stop also records the export stopped
// in its state file; with one, Stop then waits (a few seconds at most)
// until the supervisor records that it saw this very mark with no vblade
// running (the state file echoes the mark's content), whatever the state
// was: a backoff or a start request the supervisor had in hand when the
// mark came cannot start a vblade after Stop returns. A recorded vblade
// that has already exited is no error (the supervisor reaped it). When a
// later Start or Restart removes the mark while Stop waits, Stop returns
// at once with ErrStopOverridden. Stop works whether or not a supervisor
// runs, and whether or not alias is in the current config.
func Stop(runDir, alias string) error {
	if err := checkAliasName(alias); err != nil {
		return err
	}
	dir := aoeDir(runDir)
	if err := ensureDir(dir); err != nil {
		return err
	}
	// The nonce makes the content of every mark unique, so the
	// supervisor's echo of it answers this Stop and no earlier one.
	token := time.Now().UTC().Format(time.RFC3339) + " " + newNonce()
	if err := writeFileAtomic(filepath.Join(dir, alias+markSuffix), []byte(token+"\n")); err != nil {
		return err
	}
	return kill(dir, alias, token)
}

// kill ends the recorded vblade of alias without touching the stop mark.
// token is the content of the stop mark Stop wrote ("" from Restart, which
// calls kill only without a supervisor): with a supervisor, kill waits for
// the supervisor to echo it.
func kill(dir, alias, token string) error {
	st, err := readState(dir, alias)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, supervised, err := supervisorPID(dir)
	if err != nil {
		return err
	}
	waitSupervisor := supervised && st.Supervised && token != ""
	live := st.PID > 0 && (st.State == StateRunning || st.State == StateStarting)
	if !live && !waitSupervisor {
		return nil
	}
	var kerr error
	if live {
		kerr = terminate(st.PID, st.identity, stopTimeout)
	}
	if waitSupervisor {
		// The supervisor's child. Gone already is no error: the
		// supervisor reaped it (a restart it was doing, or a crash),
		// and the mark keeps it from starting another. It may also
		// have started the next vblade, or be about to, from a request
		// or a backoff it acted on just before the mark: wait until it
		// echoes the mark with no vblade running, so that Stop returns
		// with none running in every case.
		if errors.Is(kerr, errGone) {
			kerr = nil
		}
		if kerr != nil {
			return kerr
		}
		return awaitStopped(dir, alias, token, stopTimeout+killWait+supervisorLag)
	}
	if !supervised && (kerr == nil || errors.Is(kerr, ErrStalePID)) {
		// Nobody else keeps this file: record what happened.
		st.State, st.PID, st.Since = StateStopped, 0, time.Now()
		if err := writeState(dir, st); err != nil {
			return errors.Join(kerr, err)
		}
	}
	return kerr
}

// awaitStopped waits until the supervisor's state file of alias echoes
// the stop mark token with no vblade running or starting. A mark with
// other content is a later Stop's: its echo does as well. No mark at all
// is a later Start or Restart: ErrStopOverridden.
func awaitStopped(dir, alias, token string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var st *stateFile
	for {
		if st1, err := readState(dir, alias); err == nil {
			st = st1
		}
		if st != nil && st.StopMark == token && st.PID == 0 && st.State != StateRunning && st.State != StateStarting {
			return nil
		}
		cur, ok := readMark(dir, alias)
		if !ok {
			return fmt.Errorf("%w: %s", ErrStopOverridden, alias)
		}
		token = cur
		if _, up, err := supervisorPID(dir); err == nil && !up {
			// The supervisor ended (its shutdown stops every vblade)
			// or died: nobody starts the export now. A vblade it
			// left behind is ended here, with the usual pid check.
			if st != nil && st.PID > 0 && (st.State == StateRunning || st.State == StateStarting) {
				if err := terminate(st.PID, st.identity, stopTimeout); err != nil && !errors.Is(err, ErrStalePID) {
					return err
				}
			}
			return nil
		}
		if time.Now().After(deadline) {
			if st == nil {
				return fmt.Errorf("%w: %s: no state file from the supervisor %s after the stop mark", ErrStillRunning, alias, timeout)
			}
			return fmt.Errorf("%w: %s: the supervisor still shows pid %d %s (stop mark seen: %t) %s after the stop mark", ErrStillRunning, alias, st.PID, st.State, st.StopMark == token, timeout)
		}
		time.Sleep(waitStep)
	}
}

// Start clears the stop mark of alias and makes sure its vblade runs.
//
// With a live supervisor, Start leaves a request (RunDir/aoe/<alias>.start)
// that the supervisor acts on at its next poll, waits up to about 3 s for
// the state file to show the export running, and returns its pid
// (unsupervised false); the supervisor starts the export from its own
// config file. With none, Start runs vblade itself from cfg: detached in a
// new session, stdin from /dev/null, stdout and stderr appended to
// RunDir/aoe/<alias>.log, watched for one second (an exit sooner is
// ErrNotStarted), recorded in the state file, and returns unsupervised
// true: nothing restarts it when it dies. An export that already runs is
// not an error: Start returns its pid.
//
// vblade is the binary, looked up in PATH when it has no slash.
func Start(runDir, alias string, cfg *Config, vblade string) (unsupervised bool, pid int, err error) {
	if err := checkAliasName(alias); err != nil {
		return false, 0, err
	}
	exp, ok := cfg.Export(alias)
	if !ok {
		return false, 0, fmt.Errorf("%w: %q", ErrUnknownAlias, alias)
	}
	dir := aoeDir(runDir)
	if err := ensureDir(dir); err != nil {
		return false, 0, err
	}
	if err := removeMark(dir, alias); err != nil {
		return false, 0, err
	}
	st, err := readState(dir, alias)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, 0, err
	}
	if st != nil && st.PID > 0 && (st.State == StateRunning || st.State == StateStarting) {
		if ok, _, _ := verify(st.PID, st.identity); ok {
			return !st.Supervised, st.PID, nil
		}
	}
	supPID, supervised, err := supervisorPID(dir)
	if err != nil {
		return false, 0, err
	}
	if supervised {
		nonce, err := request(dir, alias, startSuffix)
		if err != nil {
			return false, 0, err
		}
		pid, err := awaitRequest(dir, alias, nonce, supPID, startWait)
		return false, pid, err
	}
	pid, err = startDetached(dir, alias, exp, cfg.Shelf, vblade)
	return true, pid, err
}

// startDetached runs vblade for exp in its own session, records it, and
// watches it for unsupervisedCheck.
func startDetached(dir, alias string, exp Export, shelf int, vblade string) (int, error) {
	bin, err := exec.LookPath(vblade)
	if err != nil {
		return 0, fmt.Errorf("aoe: find vblade: %w", err)
	}
	argv := exp.Argv(bin, shelf)
	logPath := filepath.Join(dir, alias+logSuffix)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return 0, fmt.Errorf("aoe: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s aoe: starting %q\n", time.Now().Format(time.RFC3339), argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A new session: the vblade outlives the shell and the terminal that
	// ran `agent aoe start`, and no terminal signal reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("aoe: start %s: %w", alias, err)
	}
	pid := cmd.Process.Pid
	id, _ := startedIdentity(pid)
	st := &stateFile{
		Alias: alias, Shelf: shelf, Slot: exp.Slot, PID: pid, State: StateRunning,
		Since: time.Now(), Argv: argv, identity: id,
	}
	// Reap the child when it exits, so that a long-lived caller keeps no
	// zombie; in `agent aoe start` the process ends first and init reaps.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case werr := <-exited:
		st.State, st.PID, st.LastError = StateStopped, 0, fmt.Sprintf("start failure: %v (see %s)", werr, logPath)
		if err := writeState(dir, st); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %s: %s", ErrNotStarted, alias, st.LastError)
	case <-time.After(unsupervisedCheck):
	}
	if err := writeState(dir, st); err != nil {
		return pid, err
	}
	return pid, nil
}

// Restart stops the vblade of alias and starts it again, clearing any stop
// mark and applying a changed config. With a live supervisor it leaves a
// request (RunDir/aoe/<alias>.restart): the supervisor stops its child,
// re-reads its config file and starts the export at once, without backoff;
// Restart waits for the export to run again. A Stop before it runs again
// wins: Restart then returns ErrNotStarted saying so. With none, Restart ends the
// recorded vblade the way Stop does (a stale pid is not signalled) and
// then calls Start with cfg.
func Restart(runDir, alias string, cfg *Config, vblade string) error {
	if err := checkAliasName(alias); err != nil {
		return err
	}
	if _, ok := cfg.Export(alias); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAlias, alias)
	}
	dir := aoeDir(runDir)
	if err := ensureDir(dir); err != nil {
		return err
	}
	if err := removeMark(dir, alias); err != nil {
		return err
	}
	supPID, supervised, err := supervisorPID(dir)
	if err != nil {
		return err
	}
	if supervised {
		nonce, err := request(dir, alias, reloadSuffix)
		if err != nil {
			return err
		}
		_, err = awaitRequest(dir, alias, nonce, supPID, stopTimeout+startWait)
		return err
	}
	if err := kill(dir, alias, ""); err != nil && !errors.Is(err, ErrStalePID) {
		return err
	}
	_, _, err = Start(runDir, alias, cfg, vblade)
	return err
}

// Status reports every export of cfg, in config order, then every alias
// that has a state file but is no longer in cfg, sorted. An export with no
// state file is stopped. A state of running or starting whose pid is gone
// or is no longer that vblade is reported dead, and so is a backoff when no
// supervisor runs to end it; an export with the stop mark and no live
// vblade is reported stopped. A state file that cannot be read gives an
// entry in StateUnknown rather than an error.
func Status(runDir string, cfg *Config) ([]ExportStatus, error) {
	dir := aoeDir(runDir)
	_, supervised, err := supervisorPID(dir)
	if err != nil {
		return nil, err
	}
	var out []ExportStatus
	seen := map[string]bool{}
	for _, e := range cfg.Exports {
		seen[e.Alias] = true
		out = append(out, statusOf(dir, e.Alias, cfg.Shelf, e.Slot, supervised))
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("aoe: %w", err)
	}
	var extra []string
	for _, de := range entries {
		name := de.Name()
		alias, ok := strings.CutSuffix(name, stateSuffix)
		if !ok || !de.Type().IsRegular() || checkAliasName(alias) != nil || seen[alias] {
			continue
		}
		extra = append(extra, alias)
	}
	slices.Sort(extra)
	for _, alias := range extra {
		out = append(out, statusOf(dir, alias, cfg.Shelf, -1, supervised))
	}
	return out, nil
}

// statusOf builds the status of one alias; slot < 0 means the alias is not
// in the config.
func statusOf(dir, alias string, shelf, slot int, supervised bool) ExportStatus {
	es := ExportStatus{Alias: alias, Shelf: shelf, Slot: slot, State: StateStopped}
	st, err := readState(dir, alias)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return es
	case err != nil:
		es.State, es.LastError = StateUnknown, err.Error()
		return es
	}
	es.Shelf, es.Slot, es.PID, es.State = st.Shelf, st.Slot, st.PID, st.State
	es.Restarts, es.Since, es.LastError, es.Failures = st.Restarts, st.Since, st.LastError, st.Failures
	switch st.State {
	case StateRunning, StateStarting:
		ok, why, err := verify(st.PID, st.identity)
		switch {
		case err != nil:
			// Whether it runs cannot be told: never call it dead.
			es.State, es.LastError = StateUnknown, fmt.Sprintf("check pid %d: %v", st.PID, err)
		case !ok:
			es.State = StateDead
			if es.LastError == "" {
				es.LastError = fmt.Sprintf("pid %d %s", st.PID, why)
			}
		}
	case StateBackoff:
		if !supervised {
			es.State = StateDead
		}
	}
	if es.State == StateDead && marked(dir, alias) {
		es.State = StateStopped
	}
	return es
}

// SupervisorRunning reports whether a live supervisor serves runDir.
func SupervisorRunning(runDir string) (bool, error) {
	_, up, err := supervisorPID(aoeDir(runDir))
	return up, err
}

// Package cron runs the daemon's jobs in process on cron-style schedules.
//
// It owns the schedule grammar (ParseSchedule: five-field cron, @every,
// the @daily-style descriptors and a CRON_TZ= or TZ= prefix) and the
// Scheduler, which fires each Job on its Schedule with these guarantees:
//
//   - no overlap: a tick that arrives while the same job still runs is
//     skipped and counted, never queued;
//   - a panicking job is recovered, logged with its stack and recorded as
//     that run's error; the scheduler keeps going;
//   - every run gets a context derived from the scheduler's lifetime, which
//     Stop cancels, and Stop and Drain return only after every goroutine the
//     package started has finished (or the caller's context ran out).
//
// Ticking is done by github.com/robfig/cron/v3, whose Parser also supplies
// the five-field and descriptor grammar. The package implements @every itself
// because robfig rounds intervals up to whole seconds and silently accepts
// zero and negative ones.
//
// Package cron never prints, never exits the process and never lets a job's
// panic escape; it knows nothing about what the jobs do. Callers learn about
// results through Options.OnDone, Status and the Options.Logger.
package cron

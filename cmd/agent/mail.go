package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/report"
	"opsagent/rules"
)

// mailConfig builds the mail settings from the config's options.
func mailConfig(o rules.Options, host string, logger *slog.Logger) report.MailConfig {
	from := o.MailFrom
	if from == "" {
		from = "agent@" + host
	}
	sendmail := o.Sendmail
	if sendmail == "" && o.SMTPURL == "" {
		sendmail = report.DefaultSendmail
	}
	return report.MailConfig{
		To: o.MailTo, From: from, SMTPURL: o.SMTPURL, SMTPUser: o.SMTPUser,
		SMTPPasswordFile: o.SMTPPasswordFile, SMTPTLS: o.SMTPTLS, SMTPCAFile: o.SMTPCAFile,
		Sendmail: sendmail, Host: host, Logger: logger,
	}
}

func mailSpool(o rules.Options, logger *slog.Logger) *report.Spool {
	return &report.Spool{Dir: filepath.Join(o.StateDir, "spool"), Logger: logger}
}

// mailContext bounds mail delivery; it outlives an interrupted scan so that
// the report of a finished run is still delivered or spooled.
func (r *integrityRun) mailContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Minute)
}

// mailReport mails a run's plain report. A clean check is mailed only with
// mail_clean=yes. Mail that cannot be delivered is spooled in
// state_dir/spool and retried by the next run and by `agent mail flush`; the
// run's exit status does not change, a warning names the spooled file.
// With mail_on=unexplained (the default) a report whose changes packages
// explain all of is not mailed either.
func (r *integrityRun) mailReport(rep *report.Report, text []byte, clean bool) {
	o := r.pol.Options
	if clean && rep.Kind != report.KindInit && !o.MailClean {
		r.flushSpool()
		return
	}
	// mail_on=unexplained (the default): changes that packages explain
	// all of are kept and logged, not mailed.
	if o.MailOn != "changes" && explainedOnly(rep) {
		r.flushSpool()
		return
	}
	if len(o.MailTo) == 0 {
		r.warn("--mail: mail_to is not set in the config; no mail sent")
		return
	}
	cfg := mailConfig(o, r.host, r.log)
	name := r.reportID + ".txt"
	if r.reportID == "" {
		name = string(rep.Kind) + ".txt"
	}
	msg, err := report.NewReportMessage(cfg, report.Subject(r.host, rep), text, name)
	if err != nil {
		r.warn("cannot build the report mail: %v", err)
		return
	}
	r.deliver(cfg, msg)
}

// mailError mails that a run failed (--mail), so a broken cron job is not
// silent.
func (r *integrityRun) mailError(what string, runErr error) {
	o := r.pol.Options
	if len(o.MailTo) == 0 {
		return
	}
	cfg := mailConfig(o, r.host, r.log)
	body := fmt.Sprintf("agent %s on %s failed at %s:\n\n%v\n", what, r.host, time.Now().Format(time.RFC1123Z), runErr)
	msg, err := report.NewMessage(cfg, report.ErrorSubject(r.host, what), []byte(body), "", nil)
	if err != nil {
		r.warn("cannot build the error mail: %v", err)
		return
	}
	r.deliver(cfg, msg)
}

func (r *integrityRun) deliver(cfg report.MailConfig, msg []byte) {
	ctx, cancel := r.mailContext()
	defer cancel()
	deliverMail(ctx, r.pol.Options, cfg, msg, r.log, r.stderr, r.warn)
}

// deliverMail sends msg or spools it in state_dir/spool, counts the
// outcome for the metrics (observeDelivery, with warn for its own
// problems), and says on stderr, whatever --quiet, when the mail did not
// leave: a report nobody receives must be seen.
func deliverMail(ctx context.Context, o rules.Options, cfg report.MailConfig, msg []byte, logger *slog.Logger, stderr io.Writer, warn func(string, ...any)) {
	spool := mailSpool(o, logger)
	spooled, err := report.Deliver(ctx, cfg, spool, msg)
	observeDelivery(o, spool, err, warn)
	switch {
	case err == nil:
	case spooled != "":
		fmt.Fprintf(stderr, "agent: warning: mail not delivered (%v); spooled as %s, retried by the next run and by 'agent mail flush'\n", err, spooled)
	default:
		fmt.Fprintf(stderr, "agent: warning: mail not delivered and not spooled: %v\n", err)
	}
}

// stderrWarn is a warn function printing on w.
func stderrWarn(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, "agent: warning: "+format+"\n", args...) }
}

// flushSpool retries spooled mail when mail is configured; runs that send
// no mail of their own still empty the spool.
func (r *integrityRun) flushSpool() {
	o := r.pol.Options
	if len(o.MailTo) == 0 {
		return
	}
	spool := mailSpool(o, r.log)
	items, err := spool.List()
	if err != nil || len(items) == 0 {
		return
	}
	cfg := mailConfig(o, r.host, r.log)
	ctx, cancel := r.mailContext()
	defer cancel()
	sent, remaining, err := spool.Flush(ctx, func(m []byte) error { return report.Send(ctx, cfg, m) })
	observeMail(o, spool, sent, err, r.alert)
	if err != nil && remaining > 0 {
		r.warn("%d spooled mail(s) still not delivered: %v", remaining, err)
	}
}

func mailCommand() *cli.Command {
	return &cli.Command{
		Name:  "mail",
		Usage: "mail delivery: flush the spool, send a test message",
		Subcommands: []*cli.Command{
			{
				Name:  "flush",
				Usage: "retry the spooled mail in order (exit 0 when the spool is empty afterwards, 1 when mail remains)",
				Action: func(c *cli.Context) error {
					pol, err := loadPolicy(c)
					if err != nil {
						return err
					}
					host, _ := os.Hostname()
					logger := cliLogger(c, slog.LevelInfo)
					cfg := mailConfig(pol.Options, host, logger)
					spool := mailSpool(pol.Options, logger)
					ctx, cancel := context.WithTimeout(c.Context, 10*time.Minute)
					defer cancel()
					sent, remaining, ferr := spool.Flush(ctx, func(m []byte) error { return report.Send(ctx, cfg, m) })
					observeMail(pol.Options, spool, sent, ferr, func(f string, a ...any) {
						fmt.Fprintf(c.App.ErrWriter, "agent: warning: "+f+"\n", a...)
					})
					if !c.Bool("quiet") {
						fmt.Fprintf(c.App.Writer, "%d sent, %d remaining in %s\n", sent, remaining, spool.Dir)
					}
					if remaining > 0 {
						if ferr == nil {
							ferr = errors.New("mail remains in the spool")
						}
						return &exitError{code: 1, err: ferr}
					}
					if ferr != nil && !c.Bool("quiet") {
						fmt.Fprintf(c.App.ErrWriter, "agent: warning: %v\n", ferr)
					}
					return nil
				},
			},
			{
				Name:  "test",
				Usage: "send a test message to mail_to, printing every SMTP step when it fails",
				Action: func(c *cli.Context) error {
					pol, err := loadPolicy(c)
					if err != nil {
						return err
					}
					if len(pol.Options.MailTo) == 0 {
						return fmt.Errorf("%w: mail_to is not set", errConfig)
					}
					host, _ := os.Hostname()
					var steps stepLog
					logger := slog.New(slog.NewTextHandler(&steps, &slog.HandlerOptions{Level: slog.LevelDebug}))
					cfg := mailConfig(pol.Options, host, logger)
					body := fmt.Sprintf("This is a test message from agent %s on %s, sent %s.\n", version, host, time.Now().Format(time.RFC1123Z))
					msg, err := report.NewMessage(cfg, "[agent] "+host+": mail test", []byte(body), "", nil)
					if err != nil {
						return err
					}
					ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
					defer cancel()
					info, err := report.SendWithInfo(ctx, cfg, msg)
					if err != nil {
						io.WriteString(c.App.ErrWriter, steps.String())
						var se *report.SendError
						if errors.As(err, &se) {
							return fmt.Errorf("mail test failed at step %q (%s): %w", se.Step, describeSend(info), se.Err)
						}
						return fmt.Errorf("mail test failed (%s): %w", describeSend(info), err)
					}
					if !c.Bool("quiet") {
						fmt.Fprintf(c.App.Writer, "test message sent to %v\n%s\n", pol.Options.MailTo, describeSend(info))
					}
					return nil
				},
			},
		},
	}
}

// describeSend says how `mail test` delivered: through sendmail, or the
// SMTP server, the smtp_tls policy, the TLS used and whether the server's
// certificate was verified.
func describeSend(i report.SendInfo) string {
	if i.Sendmail != "" {
		return "via " + i.Sendmail
	}
	s := "via " + i.Server
	if i.Policy != "" {
		s += ", smtp_tls = " + i.Policy
	}
	switch {
	case i.TLS == "":
		s += ", plain text (no TLS)"
	case i.Verified:
		s += fmt.Sprintf(", %s %s, certificate verified", i.TLS, i.TLSVersion)
	case i.VerifyError != nil:
		s += fmt.Sprintf(", %s %s, certificate NOT verified (%v)", i.TLS, i.TLSVersion, i.VerifyError)
	default:
		s += fmt.Sprintf(", %s %s, certificate not verified", i.TLS, i.TLSVersion)
	}
	return s
}

// stepLog collects the mail client's debug log for `mail test`.
type stepLog struct{ b []byte }

func (s *stepLog) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *stepLog) String() string              { return string(s.b) }

// cliLogger is a stderr logger honouring --quiet.
func cliLogger(c *cli.Context, level slog.Level) *slog.Logger {
	if c.Bool("quiet") {
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
}

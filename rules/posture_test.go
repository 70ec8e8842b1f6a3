package rules

import (
	"reflect"
	"strings"
	"testing"
)

func TestPostureOptions(t *testing.T) {
	conf := "posture_tmp_dirs = /tmp /var/tmp /srv/upload\nposture_web_roots = /var/www\n" +
		"posture_allow = /tmp/ok\\.sh /var/www/bin/.*\nposture_allow = /tmp/x\nposture_schedule = @hourly\n/etc p\n"
	p, err := Parse(strings.NewReader(conf), "a.conf", LoadOptions{NoIncludes: true})
	if err != nil {
		t.Fatal(err)
	}
	o := p.Options
	if !reflect.DeepEqual(o.PostureTmpDirs, []string{"/tmp", "/var/tmp", "/srv/upload"}) ||
		!reflect.DeepEqual(o.PostureWebRoots, []string{"/var/www"}) ||
		!reflect.DeepEqual(o.PostureAllow, []string{`/tmp/ok\.sh`, "/var/www/bin/.*", "/tmp/x"}) ||
		o.SchedulePosture != "@hourly" {
		t.Errorf("got %q %q %q %q", o.PostureTmpDirs, o.PostureWebRoots, o.PostureAllow, o.SchedulePosture)
	}
	q, err := Parse(strings.NewReader(p.Format()), "canon.conf", LoadOptions{NoIncludes: true})
	if err != nil || !reflect.DeepEqual(q.Options, p.Options) {
		t.Errorf("Format round trip: %v\n%s", err, p.Format())
	}
	d, err := Parse(strings.NewReader("/etc p\n"), "d.conf", LoadOptions{NoIncludes: true})
	if err != nil || d.Options.PostureTmpDirs != nil || d.Options.SchedulePosture != DefaultSchedulePosture {
		t.Errorf("defaults: %v %q %q", err, d.Options.PostureTmpDirs, d.Options.SchedulePosture)
	}
}

func TestPostureOptionErrors(t *testing.T) {
	for name, line := range map[string]string{
		"relative tmp dir": "posture_tmp_dirs = /tmp tmp",
		"empty web roots":  "posture_web_roots =",
		"bad regex":        "posture_allow = /tmp/(x",
		"empty schedule":   "posture_schedule =",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader("/etc p\n"+line+"\n"), "b.conf", LoadOptions{NoIncludes: true})
			if err == nil || !strings.Contains(err.Error(), "b.conf:2") {
				t.Errorf("got %v, want an error at b.conf:2", err)
			}
		})
	}
}

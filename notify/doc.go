// Package notify tells the monitoring a fleet already runs what the agent
// found: it writes the Prometheus metrics files that node_exporter's
// textfile collector reads (one file per job, agent_<job>.prom, written
// atomically) and sends structured events (one JSON object per finding) to
// the journal, syslog or a file, with a flood limit per run.
//
// The metrics go through prometheus/client_golang's registry and the text
// writer of prometheus/common/expfmt; there is no hand-made exposition
// format. Every family the agent can write is declared once in Families,
// which the example alert rules and dashboard are tested against.
//
// notify never prints and never exits: it returns errors. It never drops a
// series a host had because a probe failed: the caller passes the last
// known set, and a vanished item is written with its error flag set.
package notify

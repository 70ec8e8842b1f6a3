// Package examples holds the sample configuration files shipped with the
// agent. The default agent.conf is embedded in the binary; the tests parse
// every file here so the examples cannot rot.
package examples

import _ "embed"

// AgentConf is examples/agent.conf, the configuration used when no config file
// exists.
//
//go:embed agent.conf
var AgentConf []byte

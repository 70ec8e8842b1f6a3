// Command gendoc writes the agent(8) man page and the bash completion script
// from the CLI definitions of a built agent binary.
//
//	go run ./internal/gendoc -agent bin/agent -readme README.md -man DIR -bash DIR
//
// The CLI is defined in package main of cmd/agent, which cannot be imported,
// so gendoc asks the binary itself: it runs `agent --help` and the --help of
// every command and subcommand it lists (urfave/cli's help layout: NAME,
// USAGE, DESCRIPTION, COMMANDS, OPTIONS), with an empty environment so that
// nothing local (AGENT_CONFIG) leaks into the page. The exit status table and
// the state files come from README.md, the single place they are written
// down. It writes DIR/agent.8 for -man and DIR/agent for -bash.
//
// The completion script is urfave/cli's mechanism: at every TAB it runs the
// agent with the words typed so far and --generate-bash-completion, which
// prints the commands and flags that may follow without running anything.
// gendoc adds what the binary cannot say at that point: after a flag that
// takes a value, complete file names (FILE, DIR) or nothing.
//
// gendoc fails, rather than writing a wrong page, on help output it does not
// understand (an unknown section, a line in OPTIONS that is not a flag).
// The page is deterministic for a given binary, README and date: the date is
// -date, else SOURCE_DATE_EPOCH, else today.
package main

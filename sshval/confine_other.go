//go:build !linux

package sshval

import "fmt"

// landlockABI is 0: Landlock is Linux only.
func landlockABI() int { return 0 }

// Run refuses: confinement and the privilege drop are implemented for
// Linux only.
func Run(d Decision, p *Plan) error {
	if err := checkArgv(d); err != nil {
		return err
	}
	return fmt.Errorf("%w: only implemented on Linux", ErrConfine)
}

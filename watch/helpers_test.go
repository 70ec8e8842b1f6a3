package watch

import "os/exec"

func runSh(script string) ([]byte, error) { return exec.Command("sh", "-c", script).CombinedOutput() }

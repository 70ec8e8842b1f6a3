package notify

import (
	"os/exec"

	dto "github.com/prometheus/client_model/go"
)

type dtoFamilies = dto.MetricFamily

func execLookPath(name string) (string, error) { return exec.LookPath(name) }

func execOutput(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).Output()
}

package sim

import (
	"github.com/godwit-io/godwit/configs"
)

// DefaultScenarioFile is the embedded default scenario's name in errors and reports.
const DefaultScenarioFile = "configs/scenarios/default.yaml"

// DefaultScenario returns the embedded default scenario (configs/scenarios/default.yaml).
func DefaultScenario() (*Scenario, error) {
	data, err := configs.Scenarios.ReadFile("scenarios/default.yaml")
	if err != nil {
		return nil, err
	}
	return parseScenario(DefaultScenarioFile, data, configs.Scenarios.ReadFile)
}

package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// NodeMetrics is what a trigger expression sees as `node`.
type NodeMetrics struct {
	ID     string            `expr:"id"`
	Site   string            `expr:"site"`
	Labels map[string]string `expr:"labels"`
	// CPU and Memory are utilizations, 0..1 (used / capacity).
	CPU    float64 `expr:"cpu"`
	Memory float64 `expr:"memory"`
	// Pressure is memory pressure, 0..1.
	Pressure float64 `expr:"pressure"`
	// Containers is the number of containers on the node.
	Containers int  `expr:"containers"`
	Drained    bool `expr:"drained"`
	// CPUCores and MemoryGiB are capacities.
	CPUCores  float64 `expr:"cpuCores"`
	MemoryGiB float64 `expr:"memoryGiB"`
}

// ContainerMetrics is what a container trigger expression sees as `container`.
type ContainerMetrics struct {
	ID     string            `expr:"id"`
	Name   string            `expr:"name"`
	Image  string            `expr:"image"`
	Labels map[string]string `expr:"labels"`
	// CPU is CPU in use, in cores; MemoryGiB memory in use.
	CPU       float64 `expr:"cpu"`
	MemoryGiB float64 `expr:"memoryGiB"`
	// Downtime is the predicted downtime, in seconds, of moving the container over a
	// link with the cost model's default bandwidth and RTT.
	Downtime float64 `expr:"downtime"`
	// UserRTT is the weighted mean RTT from the container's node to its users, in
	// milliseconds (0 when it has no users).
	UserRTT float64 `expr:"userRTT"`
}

// nodeEnv is the environment of node-scope triggers.
type nodeEnv struct {
	Node NodeMetrics `expr:"node"`
}

// containerEnv is the environment of container-scope triggers: the container and its node.
type containerEnv struct {
	Node      NodeMetrics      `expr:"node"`
	Container ContainerMetrics `expr:"container"`
}

// ExprError is a trigger expression that does not compile, with the position inside the
// expression (1-based line and column; zero when unknown).
type ExprError struct {
	Line, Column int
	Msg          string
}

func (e *ExprError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
	}
	return e.Msg
}

// compileExpr compiles a boolean trigger expression for scope. Builtins that read the clock
// or the local time zone (now, date, timezone) are disabled so that evaluation stays a
// function of its inputs, and repeat so that an expression cannot allocate without bound.
func compileExpr(src string, scope Scope) (*vm.Program, error) {
	var env any = nodeEnv{}
	if scope == ScopeContainer {
		env = containerEnv{}
	}
	prog, err := expr.Compile(src,
		expr.Env(env), expr.AsBool(),
		expr.DisableBuiltin("now"), expr.DisableBuiltin("date"),
		expr.DisableBuiltin("timezone"), expr.DisableBuiltin("repeat"),
		expr.MaxNodes(1000),
	)
	if err == nil {
		return prog, nil
	}
	var fe *file.Error
	if errors.As(err, &fe) {
		// expr's columns are 0-based.
		msg := strings.NewReplacer("type policy.NodeMetrics", "node", "type policy.ContainerMetrics", "container",
			"policy.NodeMetrics", "node", "policy.ContainerMetrics", "container").Replace(fe.Message)
		return nil, &ExprError{Line: fe.Line, Column: fe.Column + 1, Msg: msg}
	}
	return nil, &ExprError{Msg: err.Error()}
}

// Compile compiles the policy's trigger expressions. Parse calls it; call it after building
// or changing a Policy by hand. It returns every error, joined.
func (p *Policy) Compile() error {
	var errs []error
	for i := range p.Triggers {
		t := &p.Triggers[i]
		var err error
		if t.when, err = compileExpr(t.When, t.Scope); err != nil {
			errs = append(errs, fmt.Errorf("trigger %q when: %w", t.Name, err))
		}
		t.until = nil
		if t.Until != "" {
			if t.until, err = compileExpr(t.Until, t.Scope); err != nil {
				errs = append(errs, fmt.Errorf("trigger %q until: %w", t.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func runBool(prog *vm.Program, env any) (bool, error) {
	out, err := expr.Run(prog, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// Errors of the state machine. FSM.Apply returns them in ApplyResult.Err, wrapped in a
// *Rejection that says which command and what exactly; test them with errors.Is.
var (
	// ErrInvalidCommand: the log entry is not a well-formed command: bad JSON, unknown
	// fields, a missing or invalid field, a payload that does not match its type.
	ErrInvalidCommand = errors.New("scheduler: invalid command")
	// ErrUnknownCommand: the command's type or version is not one this server knows (a
	// newer leader proposed it too early in an upgrade). It also matches
	// ErrInvalidCommand.
	ErrUnknownCommand = &kindError{"scheduler: unknown command type or version", ErrInvalidCommand}
	// ErrNotFound: the command names a migration the ledger does not have.
	ErrNotFound = errors.New("scheduler: not found")
	// ErrConflict: the command is well formed but the state does not allow it. The
	// errors below are its kinds and all match it.
	ErrConflict = errors.New("scheduler: conflicts with the current state")
	// ErrInFlight: the workload already has a migration in flight or in doubt (the
	// Rejection names it).
	ErrInFlight = &kindError{"scheduler: workload has a migration in flight or in doubt", ErrConflict}
	// ErrNotOwner: the migration's source, or a node claiming a workload, is not the
	// workload's owner.
	ErrNotOwner = &kindError{"scheduler: node is not the workload's owner", ErrConflict}
	// ErrDrained: the migration's target is drained.
	ErrDrained = &kindError{"scheduler: target node is drained", ErrConflict}
	// ErrExists: a migration with that ID is already in the ledger.
	ErrExists = &kindError{"scheduler: migration ID already in the ledger", ErrConflict}
	// ErrInvalidTransition: the migration cannot go from its phase to the one asked
	// (see ValidTransition).
	ErrInvalidTransition = &kindError{"scheduler: invalid phase transition", ErrConflict}
	// ErrInvalidSnapshot is returned by FSM.Restore for a snapshot it cannot read or whose
	// state is inconsistent; the FSM keeps its state.
	ErrInvalidSnapshot = errors.New("scheduler: invalid snapshot")
)

// kindError is a sentinel that also matches a broader one.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }

// Rejection is why Apply refused a command. It changed nothing.
type Rejection struct {
	// Type is the command's type (empty when the entry did not decode).
	Type CommandType
	// Err is the kind: one of the Err... sentinels above.
	Err error
	// Detail says what exactly, for people.
	Detail string
	// Migration is the migration the command conflicts with or names, when there is one
	// (for ErrInFlight: the migration holding the workload).
	Migration string
	// Cause is an underlying error, such as the policy parser's (nil if none).
	Cause error
}

func (r *Rejection) Error() string {
	msg := r.Err.Error()
	if r.Type != "" {
		msg += " (" + string(r.Type) + ")"
	}
	if r.Detail != "" {
		msg += ": " + r.Detail
	}
	if r.Cause != nil {
		msg += ": " + r.Cause.Error()
	}
	return msg
}

// Unwrap returns the kind and the cause, for errors.Is and errors.As.
func (r *Rejection) Unwrap() []error {
	if r.Cause != nil {
		return []error{r.Err, r.Cause}
	}
	return []error{r.Err}
}

func reject(kind error, format string, args ...any) *Rejection {
	return &Rejection{Err: kind, Detail: fmt.Sprintf(format, args...)}
}

// CommandType names a command.
type CommandType string

// Command types, one per payload type.
const (
	TypeApplyPolicy     CommandType = "apply-policy"
	TypePlanMigration   CommandType = "plan-migration"
	TypeSetPhase        CommandType = "set-phase"
	TypeFinishMigration CommandType = "finish-migration"
	TypeSetOwner        CommandType = "set-owner"
	TypeDrain           CommandType = "drain"
	TypeUndrain         CommandType = "undrain"
	TypeSetCostModel    CommandType = "set-cost-model"
	TypeSetConditions   CommandType = "set-conditions"
	TypePruneMigrations CommandType = "prune-migrations"
	TypeSetUsers        CommandType = "set-users"
	TypeClearUsers      CommandType = "clear-users"
)

// commandVersions is the payload version this code writes and the only one it reads, per
// type. A change to a payload's meaning bumps its version; see the package doc on
// upgrades.
var commandVersions = map[CommandType]int{
	TypeApplyPolicy:     1,
	TypePlanMigration:   1,
	TypeSetPhase:        1,
	TypeFinishMigration: 1,
	TypeSetOwner:        1,
	TypeDrain:           1,
	TypeUndrain:         1,
	TypeSetCostModel:    1,
	TypeSetConditions:   1,
	TypePruneMigrations: 1,
	TypeSetUsers:        1,
	TypeClearUsers:      1,
	TypeCreateToken:     1,
	TypeDeleteToken:     1,
}

// CommandVersion returns the payload version this code writes for t (0: unknown type).
func CommandVersion(t CommandType) int { return commandVersions[t] }

// Command is the envelope of every raft log entry the state machine applies, as JSON.
type Command struct {
	Type    CommandType `json:"type"`
	Version int         `json:"version"`
	// At is when the leader proposed the command: the only time Apply knows. Required.
	At time.Time `json:"at"`
	// By is who asked: a node's name (a phase report, the leader's own plans) or an
	// operator's (a manual request). Required.
	By string `json:"by"`
	// Payload is the type's payload, as JSON.
	Payload json.RawMessage `json:"payload"`
}

// ApplyPolicy puts a policy in force. Apply parses it (policy.Parse) and refuses one that
// does not parse; the record's Version is one more than the one it replaces.
type ApplyPolicy struct {
	// File names the policy in error messages (its file name); it is not recorded.
	File string `json:"file,omitempty"`
	// Source is the policy file's text.
	Source string `json:"source"`
}

// PlanMigration records a new migration as planned. It is refused when the workload has a
// migration in flight or in doubt, when the source is not the workload's owner (if one is
// known; if none is, the source becomes the owner), when the target is drained, or when
// the ID is in the ledger.
type PlanMigration struct {
	ID        string `json:"id"`
	Workload  string `json:"workload"`
	Container string `json:"container,omitempty"`
	Source    string `json:"source"`
	Target    string `json:"target"`
	Method    string `json:"method"`
	// MemoryBytes is the workload's memory in use, as the view had it.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// Predicted is the cost model's prediction (PredictedCosts of the decision's Cost).
	Predicted Costs `json:"predicted"`
	// Attempt is the try at this move, from 1 (0 means 1).
	Attempt int `json:"attempt,omitempty"`
	// Reason is why: the decision's explanation in brief, or the operator's request.
	Reason string `json:"reason,omitempty"`
	// Manual marks an operator's request.
	Manual bool `json:"manual,omitempty"`
}

// SetPhase records a migration's progress to preparing, frozen, streaming or restoring.
// Outcomes (terminal phases and in-doubt) go through FinishMigration. Reporting the phase
// the migration is already in is accepted and changes nothing.
type SetPhase struct {
	ID    string `json:"id"`
	Phase Phase  `json:"phase"`
	// Reason is kept in the migration's history.
	Reason string `json:"reason,omitempty"`
}

// FinishMigration records a migration's outcome: completed, rolled-back, failed, or
// in-doubt when it cannot be settled now. Completed moves the workload's ownership to the
// target and records its LastMove. Reporting the phase the migration is already in is
// accepted and changes nothing (the first report's measurements stay).
type FinishMigration struct {
	ID    string `json:"id"`
	Phase Phase  `json:"phase"`
	// Measured is what the nodes measured (MeasuredCosts of their report).
	Measured Costs `json:"measured"`
	// TargetContainer is the workload's container ID on the target, when known.
	TargetContainer string `json:"targetContainer,omitempty"`
	// Failure is why it did not complete, or why it is in doubt.
	Failure string `json:"failure,omitempty"`
}

// SetOwner records which node owns a workload found on a node with no owner yet. It is
// refused when another node owns it, unless Replace is set (an operator's correction after
// a node was lost), and always while the workload has a migration in flight or in doubt.
type SetOwner struct {
	Workload string `json:"workload"`
	Node     string `json:"node"`
	Replace  bool   `json:"replace,omitempty"`
}

// Drain marks a node drained: nothing moves onto it. Draining a drained node changes
// nothing (the first drain's record stays).
type Drain struct {
	Node   string `json:"node"`
	Reason string `json:"reason,omitempty"`
}

// Undrain lifts a drain. Undraining a node that is not drained changes nothing.
type Undrain struct {
	Node string `json:"node"`
}

// SetCostModel replaces the cost model and its prediction errors, as the leader refitted
// them (policy.Fit) from measured migrations.
type SetCostModel struct {
	Model  policy.CostModel `json:"model"`
	Errors CostErrors       `json:"errors"`
}

// SetConditions replaces the engine's trigger state with the last evaluation's
// (policy.Plan.Conditions and ConditionStats).
type SetConditions struct {
	Conditions []policy.ConditionState `json:"conditions"`
	Stats      []policy.ConditionStat  `json:"stats"`
}

// PruneMigrations drops the finished migrations that ended before Before, and the last
// moves older than Before. Migrations in flight or in doubt are kept whatever their age.
type PruneMigrations struct {
	Before time.Time `json:"before"`
}

// SetUsers records where a workload's users are (`godwit users set`): sites with relative
// weights (policy.CheckUserSites). It takes precedence over the container's
// godwit.io/user-sites label until ClearUsers. Recording the sites already recorded
// changes nothing (the first record's requester and time stay).
type SetUsers struct {
	Workload string            `json:"workload"`
	Sites    []policy.UserSite `json:"sites"`
}

// ClearUsers drops a workload's recorded user sites: its label, if any, counts again.
// Clearing a workload with none recorded changes nothing.
type ClearUsers struct {
	Workload string `json:"workload"`
}

// payload is implemented by every payload type. check validates what can be validated
// without the state; Apply checks the rest.
type payload interface {
	commandType() CommandType
	check() error
}

func (ApplyPolicy) commandType() CommandType     { return TypeApplyPolicy }
func (PlanMigration) commandType() CommandType   { return TypePlanMigration }
func (SetPhase) commandType() CommandType        { return TypeSetPhase }
func (FinishMigration) commandType() CommandType { return TypeFinishMigration }
func (SetOwner) commandType() CommandType        { return TypeSetOwner }
func (Drain) commandType() CommandType           { return TypeDrain }
func (Undrain) commandType() CommandType         { return TypeUndrain }
func (SetCostModel) commandType() CommandType    { return TypeSetCostModel }
func (SetConditions) commandType() CommandType   { return TypeSetConditions }
func (PruneMigrations) commandType() CommandType { return TypePruneMigrations }
func (SetUsers) commandType() CommandType        { return TypeSetUsers }
func (ClearUsers) commandType() CommandType      { return TypeClearUsers }

// newPayload returns a pointer to a zero payload of type t, or nil for an unknown type.
func newPayload(t CommandType) payload {
	switch t {
	case TypeApplyPolicy:
		return &ApplyPolicy{}
	case TypePlanMigration:
		return &PlanMigration{}
	case TypeSetPhase:
		return &SetPhase{}
	case TypeFinishMigration:
		return &FinishMigration{}
	case TypeSetOwner:
		return &SetOwner{}
	case TypeDrain:
		return &Drain{}
	case TypeUndrain:
		return &Undrain{}
	case TypeSetCostModel:
		return &SetCostModel{}
	case TypeSetConditions:
		return &SetConditions{}
	case TypePruneMigrations:
		return &PruneMigrations{}
	case TypeSetUsers:
		return &SetUsers{}
	case TypeClearUsers:
		return &ClearUsers{}
	case TypeCreateToken:
		return &CreateToken{}
	case TypeDeleteToken:
		return &DeleteToken{}
	}
	return nil
}

// Encode builds the raft log entry of a command: payload is one of the payload types
// above (a value or a pointer), at the leader's clock, by who asked. It refuses what Apply
// would refuse without looking at the state (a missing field, a zero time), so a caller
// learns of its mistake before a raft round trip.
func Encode(t CommandType, body any, at time.Time, by string) ([]byte, error) {
	p, ok := body.(payload)
	if v := reflect.ValueOf(body); !ok || v.Kind() == reflect.Pointer && v.IsNil() || p.commandType() != t {
		return nil, &Rejection{Type: t, Err: ErrInvalidCommand, Detail: fmt.Sprintf("payload %T is not a %s payload", body, t)}
	}
	v := commandVersions[t]
	if v == 0 {
		return nil, &Rejection{Type: t, Err: ErrUnknownCommand}
	}
	if err := checkEnvelope(at, by); err != nil {
		err.Type = t
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, withType(err, t)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, &Rejection{Type: t, Err: ErrInvalidCommand, Cause: err}
	}
	return json.Marshal(Command{Type: t, Version: v, At: at, By: by, Payload: raw})
}

// DecodeCommand parses a log entry into its envelope and payload (a pointer to one of the
// payload types), strictly: unknown fields, trailing data, an unknown type or version, or
// a payload that fails its own checks are errors (a *Rejection). It does not look at any
// state.
func DecodeCommand(data []byte) (*Command, any, error) {
	var c Command
	if err := strictUnmarshal(data, &c); err != nil {
		return nil, nil, &Rejection{Err: ErrInvalidCommand, Detail: "envelope", Cause: err}
	}
	p := newPayload(c.Type)
	if p == nil {
		return &c, nil, reject(ErrUnknownCommand, "type %q", truncate(string(c.Type), 64))
	}
	if c.Version != commandVersions[c.Type] {
		return &c, nil, &Rejection{Type: c.Type, Err: ErrUnknownCommand, Detail: fmt.Sprintf("version %d", c.Version)}
	}
	if err := checkEnvelope(c.At, c.By); err != nil {
		err.Type = c.Type
		return &c, nil, err
	}
	if len(c.Payload) == 0 || bytes.Equal(c.Payload, []byte("null")) {
		return &c, nil, &Rejection{Type: c.Type, Err: ErrInvalidCommand, Detail: "no payload"}
	}
	if err := strictUnmarshal(c.Payload, p); err != nil {
		return &c, nil, &Rejection{Type: c.Type, Err: ErrInvalidCommand, Detail: "payload", Cause: err}
	}
	if err := p.check(); err != nil {
		return &c, nil, withType(err, c.Type)
	}
	return &c, p, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func withType(err error, t CommandType) error {
	var r *Rejection
	if errors.As(err, &r) {
		r.Type = t
		return r
	}
	return &Rejection{Type: t, Err: ErrInvalidCommand, Cause: err}
}

func checkEnvelope(at time.Time, by string) *Rejection {
	if at.IsZero() {
		return reject(ErrInvalidCommand, "no time (at)")
	}
	if !validName(by) {
		return reject(ErrInvalidCommand, "no or invalid requester (by)")
	}
	return nil
}

// Limits on what a command may carry, so that no command bloats every server's state.
const (
	maxNameLen   = 256     // node, workload and container names
	maxTextLen   = 1024    // reasons and failures: longer ones are cut
	maxPolicyLen = 1 << 20 // a policy file
)

// validName accepts a node, workload or container name: not empty, not too long, no
// control characters.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// validID accepts a migration ID: nodes use it as a file name (migrate.ValidID).
func validID(id string) bool { return migrate.ValidID(id) }

// truncate cuts s to at most n bytes on a rune boundary. Apply uses it on free text, which
// a report should never be refused for.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func missing(field string) *Rejection {
	return reject(ErrInvalidCommand, "missing or invalid %s", field)
}

func (p ApplyPolicy) check() error {
	switch {
	case p.Source == "":
		return missing("source")
	case len(p.Source) > maxPolicyLen:
		return reject(ErrInvalidCommand, "policy of %d bytes, more than %d", len(p.Source), maxPolicyLen)
	case len(p.File) > maxNameLen:
		return missing("file")
	}
	return nil
}

func (p PlanMigration) check() error {
	switch {
	case !validID(p.ID):
		return missing("id")
	case !validName(p.Workload):
		return missing("workload")
	case p.Container != "" && !validName(p.Container):
		return missing("container")
	case !validName(p.Source):
		return missing("source")
	case !validName(p.Target):
		return missing("target")
	case !validName(p.Method):
		return missing("method")
	case p.Source == p.Target:
		return reject(ErrInvalidCommand, "source and target are both %q", p.Source)
	case p.MemoryBytes < 0 || p.Attempt < 0 || !p.Predicted.valid():
		return reject(ErrInvalidCommand, "negative memory, attempt or predicted cost")
	}
	return nil
}

func (p SetPhase) check() error {
	switch {
	case !validID(p.ID):
		return missing("id")
	case p.Phase == PhasePlanned || !p.Phase.InFlight() || p.Phase == PhaseInDoubt:
		return reject(ErrInvalidCommand, "phase %q: set-phase takes preparing, frozen, streaming or restoring (outcomes go through finish-migration)", truncate(string(p.Phase), 64))
	}
	return nil
}

func (p FinishMigration) check() error {
	switch {
	case !validID(p.ID):
		return missing("id")
	case !p.Phase.Terminal() && p.Phase != PhaseInDoubt:
		return reject(ErrInvalidCommand, "phase %q: finish-migration takes completed, rolled-back, failed or in-doubt", truncate(string(p.Phase), 64))
	case p.TargetContainer != "" && !validName(p.TargetContainer):
		return missing("targetContainer")
	case !p.Measured.valid():
		return reject(ErrInvalidCommand, "negative measured cost")
	}
	return nil
}

func (p SetOwner) check() error {
	switch {
	case !validName(p.Workload):
		return missing("workload")
	case !validName(p.Node):
		return missing("node")
	}
	return nil
}

func (p Drain) check() error {
	if !validName(p.Node) {
		return missing("node")
	}
	return nil
}

func (p Undrain) check() error {
	if !validName(p.Node) {
		return missing("node")
	}
	return nil
}

func (p SetCostModel) check() error {
	m := p.Model
	for _, l := range []policy.Linear{m.Checkpoint, m.Restore, m.Image} {
		if l.N < 0 || l.Outliers < 0 || l.RMSE < 0 {
			return reject(ErrInvalidCommand, "model: negative fit statistics")
		}
	}
	if m.DefaultBandwidthBytesPerSec <= 0 || m.DefaultRTT < 0 || m.Overhead < 0 {
		return reject(ErrInvalidCommand, "model: bandwidth must be positive, RTT and overhead not negative")
	}
	e := p.Errors
	for _, s := range []ErrorStat{e.Checkpoint, e.Transfer, e.Restore, e.Downtime, e.CheckpointBytes} {
		if s.N < 0 || s.MeanAbs < 0 || s.MeanRelative < 0 {
			return reject(ErrInvalidCommand, "errors: negative count or mean")
		}
	}
	return nil
}

func (p SetConditions) check() error {
	seen := map[[2]string]bool{}
	for i, c := range p.Conditions {
		if !validName(c.Trigger) || !validName(c.Subject) {
			return missing(fmt.Sprintf("conditions[%d] trigger or subject", i))
		}
		k := [2]string{c.Trigger, c.Subject}
		if seen[k] {
			return reject(ErrInvalidCommand, "conditions[%d]: trigger %q, subject %q twice", i, c.Trigger, c.Subject)
		}
		seen[k] = true
	}
	names := map[string]bool{}
	for i, s := range p.Stats {
		if !validName(s.Trigger) || s.Ended < 0 || s.Mean < 0 || names[s.Trigger] {
			return missing(fmt.Sprintf("stats[%d]", i))
		}
		names[s.Trigger] = true
	}
	return nil
}

func (p PruneMigrations) check() error {
	if p.Before.IsZero() {
		return missing("before")
	}
	return nil
}

func (p SetUsers) check() error {
	if !validName(p.Workload) {
		return missing("workload")
	}
	if err := policy.CheckUserSites(p.Sites); err != nil {
		return &Rejection{Err: ErrInvalidCommand, Detail: "sites", Cause: err}
	}
	return nil
}

func (p ClearUsers) check() error {
	if !validName(p.Workload) {
		return missing("workload")
	}
	return nil
}

// Package policy owns godwit's policy file format, the decision engine and the
// checkpoint-cost model. It is pure: no network, no Docker, no clock, no randomness, no
// mutable globals, and no goroutine outlives a call (on large views Evaluate splits its
// work over the CPUs and merges the results in a fixed order, so the Plan does not depend
// on the split). The live leader (scheduler/) and the simulator (sim/) call the same code, which
// is what makes a simulation say something about production. It imports none of gossip,
// scheduler, migrate or sim; they import it.
//
// # The pieces
//
//   - The value types the engine decides on: ClusterView (nodes, containers, links),
//     Ledger (migrations and trigger state), CostModel. gossip/ and sim/ fill them; tests
//     build them by hand.
//   - Parse turns a policy file into a Policy: strict YAML (unknown fields are errors),
//     every error as file:line:col, all of them at once, trigger expressions compiled and
//     type-checked at load time. Schema returns the JSON schema of the format, committed
//     as configs/schema/policy.schema.json.
//   - Evaluate is the engine: (view, policy, cost model, ledger, now) -> Plan. The Plan
//     holds the moves (Decision), an Explanation with a typed Reason for every managed
//     container, and the trigger state to pass back next time.
//   - Commit is the one step from a plan to ledger entries, for the leader and the
//     simulator alike: (view, policy, ledger, decisions, now) -> the records to add and the
//     refusals, each decision re-checked against the ledger as it grows, with a typed
//     Reason. MigrationState.CanBecome (and Ledger.Advance) is the ledger's transition
//     table; MigrationRecord says how a migration in flight counts on its source and
//     target.
//   - CostModel predicts a stop-and-copy migration's checkpoint, transfer and restore
//     time from the container's memory; Fit refits it robustly from measured migrations.
//
// # A policy file
//
// Every field is optional except apiVersion and kind; DefaultPolicy and defaults.go give
// the defaults and why. The examples in configs/policies/ are checked by the tests.
//
//	apiVersion: godwit.io/v1
//	kind: Policy
//	metadata:
//	  name: balance-load
//	spec:
//	  # off | recommend (decide and explain, never act; the default) | auto
//	  mode: auto
//	  interval: 30s
//	  # Only containers labelled godwit.io/managed=true are managed; a selector narrows it.
//	  selector:
//	    matchExpressions:
//	      - {key: tier, operator: NotIn, values: [critical]}
//	  triggers:
//	    # Fires once `when` has held for `for`; stays active until `until` holds: the
//	    # gap between 0.85 and 0.70 is the hysteresis. Expressions are expr-lang, over
//	    # node.{cpu,memory,pressure,containers,drained,...} (and container.{cpu,memoryGiB,
//	    # downtime,userRTT,...} with scope: container), type-checked when the file loads.
//	    - name: node-hot
//	      when: node.cpu > 0.85 || node.memory > 0.85
//	      until: node.cpu < 0.70 && node.memory < 0.70
//	      for: 2m
//	  objectives:            # weights; naming one switches the unnamed ones off
//	    relieveOverload: 1.0
//	    overloadThreshold: 0.85
//	    balanceLoad: 0.5
//	    followUsers: 0       # toward the container's users (lower RTT)
//	    evacuateDrained: 1.0
//	    consolidate: 0
//	  constraints:           # hard limits, never broken
//	    maxDowntime: 5s      # per container: label godwit.io/max-downtime=2s
//	    maxMemory: 4GiB
//	    maxConcurrent: 2
//	    maxConcurrentPerNode: 1
//	    maxMovesPerEvaluation: 4
//	    cooldown: 15m        # per container: label godwit.io/cooldown=1h
//	    pingPongWindow: 1h   # never back to a node it left within this
//	    minImprovement: 0.05 # net score a move must reach
//	    downtimeCost: 0.01   # score one second of predicted downtime costs
//	    headroom: {cpu: 0.15, memory: 0.10}
//	    method: auto         # or stop-and-copy, post-copy; per container: godwit.io/migration-method
//	  placement:
//	    - containers: {matchLabels: {app: video}}
//	      requireNodes: {matchLabels: {gpu: "true"}}
//	      antiAffinity:
//	        - {containers: {matchLabels: {app: video}}, topology: node, required: true}
//	  costBenefit: {}        # decide by cost and benefit (below) instead of scores
//	  windows:
//	    timezone: Europe/Berlin
//	    forbid:
//	      - {days: [mon, tue, wed, thu, fri], start: "18:00", end: "22:00"}
//
// Per-container overrides are labels: godwit.io/never-migrate=true,
// godwit.io/pin=true (stay) or godwit.io/pin=NODE (go there and stay),
// godwit.io/max-downtime, godwit.io/cooldown.
//
// # How a decision is made
//
// Evaluate steps every trigger (hysteresis state from Ledger.Conditions), then for each
// managed container runs the cheap container checks (never-migrate, pin, in flight,
// cooldown, memory limit, trigger), preselects candidate targets (on large clusters: the
// least loaded nodes, the nodes nearest the container's users, the nodes its rules
// require), filters each target (availability, drain, labels, ping-pong, headroom,
// affinity, downtime) and scores it: the weighted gains of the objectives, computed on the
// load the source and target would have after the move, minus downtimeCost per second of
// predicted downtime. Feasible moves are committed best first, each re-scored against the
// load earlier commits left, within the time windows, the move budget and the concurrency
// limits. balanceLoad only pays when the source is busier than the target by more than the
// container's share, so a move never makes its reverse attractive; cooldown,
// pingPongWindow and minImprovement are the further guards against thrashing.
//
// # Deciding by cost and benefit
//
// With a costBenefit block (configs/policies/cost-benefit.yaml spells out every field), a
// move's score is its expected net benefit in user-seconds (one user over the latency
// target, or not served, for one second), see CostBenefit and benefit.go:
//
//   - benefit: the harm per second the move removes, on the source, on the target and
//     for the container's own users, with latency = RTT from the users' site + the node's
//     M/M/1 queueing delay, times the expected remaining duration of the condition that
//     made the container a candidate. That duration is learned from how long the
//     trigger's past conditions lasted (Ledger.ConditionStats, passed back like
//     Conditions), shrunk toward the policy's horizon while there are few, and never less
//     than the condition's age;
//   - cost: a fixed cost per move, the predicted downtime times the container's users
//     (plus its dependents) times the outage weight, and a cost per GiB sent between
//     sites;
//   - a move is made when benefit - cost > 0 and benefit >= (1+margin)*cost + minBenefit
//     (else the reasons cost-over-benefit and within-margin); moves are committed most
//     relief per unit of cost first, each re-scored against the earlier ones.
//
// # Migration methods
//
// Where the cost model says the cluster offers post-copy (CostModel.PostCopy.Enabled),
// every target is scored by both methods and takes the cheaper one within maxDowntime:
// stop-and-copy freezes the container for checkpoint + transfer + restore; post-copy
// freezes it for a fixed freeze (PostCopy.Freeze) and then runs it on the target, its
// users slowed (PostCopy.Slowdown of them count as harmed) while its image arrives at the
// link's bandwidth. A move from or to a node marked NoPostCopy is by stop-and-copy only.
// Constraints.Method (constraints.method in the file: auto, stop-and-copy or post-copy) or
// the label godwit.io/migration-method can force one; a forced post-copy falls back to
// stop-and-copy where it is not offered. The decision's Prediction.Method says which was chosen (empty: stop-and-copy), and
// Commit copies it into the ledger record.
//
// Constraints (maxDowntime, maxMemory, concurrency, cooldown, ping-pong) stay hard
// operator limits; relieveOverload, followUsers and the downtimeCost/minImprovement pair
// give way to the harm model, while evacuateDrained, balanceLoad, consolidate and the
// placement rules still count, scoreValue user-seconds per unit.
//
// # Concurrency
//
// Evaluate, Parse and Fit are safe for concurrent use. Evaluate reads its inputs and never
// modifies them; the Plan it returns may share slices with itself (Decision.Triggers and
// Explanation.Triggers) and with the policy, so treat it as read-only or copy it.
package policy

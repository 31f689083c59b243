// Package sim is godwit's discrete-event simulator: it runs the decision engine of package
// policy (policy.Evaluate, the function the leader calls, with its cost model and
// migration ledger) on a modelled cluster, so that operators can see what a policy would do
// over a day before they let it move their containers.
//
// A Scenario (a YAML file, apiVersion godwit.io/v1, kind Scenario; ParseScenario reports
// every problem at file:line:col) describes sites and the links between them, nodes,
// containers with a CPU workload model (constant, diurnal, spikes, random walk, CSV trace),
// users per container moving between sites (static, random waypoint, scripted, trace), and
// events (node failure and recovery, drain, policy change). Run simulates it once per arm:
// the policy, no migration, and a descheduler-style threshold rebalancer, on the same load,
// users and events. At each decision interval the simulator builds a policy.ClusterView
// from its state, asks the arm's Planner for decisions and takes the leader's path with them:
// policy.Commit re-checks them against the view and the ledger they join (refusals are
// counted by reason), and the records it accepts are carried out as migrations that take
// the cost model's predicted time (times a seeded log-normal noise; concurrent migrations on
// one link share its bandwidth), hold the container's capacity on both nodes while in
// flight (on the source in the view, on the target through the ledger, as
// policy.MigrationRecord says), freeze it for the predicted downtime, and are recorded in a
// policy.Ledger, step by step through its transition table (Ledger.Advance), so that
// cooldowns and the anti-ping-pong window work as they do live. Metrics (load imbalance,
// overloaded node-minutes, user latency percentiles and SLO violations, migrations,
// downtime, bytes moved) come out as CSV, JSON, a table and a self-contained HTML report.
// Sweep runs a grid of policy files on all cores and marks the Pareto front.
//
// What sim must not do: decide moves itself for the policy arm (only policy.Evaluate
// does), accept a move policy.Commit refuses or keep a ledger by rules of its own, read the clock or global randomness (everything random is drawn from streams
// seeded by the scenario's seed, keyed by container, user or migration, so that the same
// seed gives the same output bytes and every arm sees the same world), or touch the
// network, Docker or raft.
package sim

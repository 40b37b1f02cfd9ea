/**
 * Policy enforcement for the agent (lifecycle.md §4.3): the pure compiler, the planner and the
 * Enforcer that keeps `inet plexd` equal to the compiled policy set.
 */
export { compile, renderStructure, setName, DEFAULT_MESH_RANGES, LOG_PREFIX } from "./compile.ts";
export { plan, fullBatch, asDump, elementDiff, type Plan, type PlanKind } from "./plan.ts";
export { Enforcer, statusOfDump, type Correction, type Corrections, type EnforcerDeps, type EnforcerLog, type EnforcerOptions, type PolicyStatus } from "./enforcer.ts";
export { nftTarget, type FirewallTarget, type ForeignTable } from "./target.ts";
export { systemFirewalld, firewalldRunning, FirewalldError, type FirewalldControl } from "./firewalld.ts";
export { foreignWarnings, type ForeignChainWarning } from "./foreign.ts";
export { ruleText } from "./text.ts";
export type * from "./types.ts";

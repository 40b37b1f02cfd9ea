/**
 * Event journal, dispatcher, DLQ and replay (operations.md §1, §2, §4). Entry module: the
 * supervisor imports from here.
 */
export { HandlerError, JournalError } from "./errors.ts";
export { DEFAULT_JOURNAL_OPTIONS, Journal, LAST_EVENT_ID_KEY, type IntakeResult, type JournalDeps, type JournalOptions, type JournalStats } from "./journal.ts";
export { Dispatcher, type DispatcherDeps, type EventHandler, type HandlerContext, type PlanResult } from "./dispatcher.ts";
export {
  dlqList,
  dlqPurge,
  dlqRetry,
  dlqShow,
  parseDlqId,
  type DlqDeliveryDetail,
  type DlqEntry,
  type DlqEventDetail,
  type DlqId,
  type DlqPurgeSelection,
  type DlqRetrySelection,
} from "./dlq.ts";
export { replay, selectReplayRows, type ReplayDeps, type ReplayFilter, type ReplayRow } from "./replay.ts";
export type { EventRow } from "./rows.ts";
export { BRIDGE_EVENT_TYPES, NEVER_REPLAY, orderingKey, TERMINAL_STATUSES, type EventStatus, type VerifyState } from "./types.ts";
export { Outbox, type OutboxDeps, type OutboxEntry, type OutboxItem, type SendOutcome } from "./outbox.ts";

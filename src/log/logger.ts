/**
 * Levelled, structured logging to stderr.
 *
 * Formats: `journal` (under systemd: `<N>level msg key=value`, no timestamp — journald adds it),
 * `text` (timestamped `level msg key=value`), `json` (one object per line). Values whose key
 * looks secret are redacted here, at the last moment, so no caller can leak a token by accident.
 */

export type Level = "debug" | "info" | "warn" | "error";
export type LogFormat = "journal" | "text" | "json";

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };
/** syslog priorities for the journal prefix. */
const SYSLOG: Record<Level, number> = { debug: 7, info: 6, warn: 4, error: 3 };
const SECRET_KEY = /(token|secret|private|psk|nsk|password|authorization)/i;

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: Fields): Logger;
  setLevel(level: Level): void;
}

export interface LoggerOptions {
  level?: Level;
  format?: LogFormat | "auto";
  /** Defaults to process.stderr. */
  write?: (line: string) => void;
  env?: Record<string, string | undefined>;
  now?: () => Date;
}

/** `auto` picks the journal form when stderr is connected to journald. */
export function resolveFormat(format: LogFormat | "auto", env: Record<string, string | undefined>): LogFormat {
  if (format !== "auto") return format;
  return env.JOURNAL_STREAM ? "journal" : "text";
}

export function redactValue(key: string, value: unknown): unknown {
  return SECRET_KEY.test(key) ? "[redacted]" : value;
}

function fmtValue(v: unknown): string {
  if (v instanceof Error) v = v.message;
  const s = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const env = opts.env ?? process.env;
  const format = resolveFormat(opts.format ?? "auto", env);
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const now = opts.now ?? (() => new Date());
  const state = { level: opts.level ?? "info" };

  const make = (base: Fields): Logger => {
    const emit = (level: Level, msg: string, fields?: Fields) => {
      if (ORDER[level] < ORDER[state.level]) return;
      const all: Fields = { ...base, ...fields };
      if (format === "json") {
        const obj: Fields = { time: now().toISOString(), level, msg };
        for (const [k, v] of Object.entries(all)) obj[k] = redactValue(k, v instanceof Error ? v.message : v);
        write(JSON.stringify(obj));
        return;
      }
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${fmtValue(redactValue(k, v))}`)
        .join(" ");
      const body = `${level} ${msg}${kv ? " " + kv : ""}`;
      write(format === "journal" ? `<${SYSLOG[level]}>${body}` : `${now().toISOString()} ${body}`);
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      with: (f) => make({ ...base, ...f }),
      setLevel: (l) => {
        state.level = l;
      },
    };
  };
  return make({});
}

/** A logger that drops everything (tests, quiet CLI paths). */
export const nullLogger: Logger = createLogger({ write: () => {}, level: "error", format: "text" });

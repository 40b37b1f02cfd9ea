/** Reading a secret from the terminal without echo, or from stdin. Never from argv. */

/** True when stdin is a terminal. */
export function stdinIsTty(): boolean {
  return process.stdin.isTTY === true;
}

/** Reads all of stdin (for `--token-stdin`), capped at 4 KiB. */
export async function readStdin(limit = 4096): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of process.stdin as AsyncIterable<Uint8Array>) {
    chunks.push(c);
    total += c.length;
    if (total > limit) break;
  }
  return Buffer.concat(chunks).toString("latin1").slice(0, limit);
}

/** Prompts on stderr and reads one line from the TTY with echo off. */
export async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the question appears: a token pasted at once must never be shown.
  stdin.setRawMode?.(true);
  stdin.resume();
  process.stderr.write(question);
  let value = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (buf: Buffer) => {
        for (const ch of buf.toString("latin1")) {
          if (ch === "\r" || ch === "\n" || ch === "\u0004") {
            stdin.off("data", onData);
            return resolve();
          }
          if (ch === "\u0003") {
            stdin.off("data", onData);
            return reject(new Error("interrupted"));
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode?.(false);
    stdin.pause();
    process.stderr.write("\n");
  }
  return value;
}

/** Asks a yes/no question on the TTY (echo on). */
export async function confirm(question: string): Promise<boolean> {
  process.stderr.write(`${question} [y/N] `);
  for await (const line of console) return /^y(es)?$/i.test(line.trim());
  return false;
}

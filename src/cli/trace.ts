/**
 * `gatehouse trace <id> [--json]`: the steps of one authorization (core/flow-trace.ts) by the reference id its error
 * page showed, from the store (`--tenant <id>` for a tenant's: each scope holds its own traces).
 */
import { parseCliArgs } from './args.js';
import { formatTrace, readTrace } from '../core/flow-trace.js';
import type { ExpiringRecordStore } from '../model/ports.js';

export const TRACE_USAGE = `  trace <id> [--json]     the steps of an authorization by the reference id its error page showed\n`;

export async function traceCommand(
  id: string | undefined,
  rest: string[],
  openStore: () => Promise<{ storage: ExpiringRecordStore & { close(): Promise<void> } }>,
  out: (text: string) => void = (text) => process.stdout.write(text),
  err: (text: string) => void = (text) => process.stderr.write(text),
): Promise<number> {
  const { values } = parseCliArgs({ args: rest, options: { json: { type: 'boolean' } } });
  if (!id) {
    err(`usage:\n${TRACE_USAGE}`);
    return 2;
  }
  const { storage } = await openStore();
  try {
    const trace = await readTrace(storage, id);
    if (!trace) {
      err(`no trace ${id}: unknown, or older than trace.ttlSeconds\n`);
      return 1;
    }
    out(values.json ? `${JSON.stringify(trace, null, 2)}\n` : formatTrace(trace));
    return 0;
  } finally {
    await storage.close();
  }
}

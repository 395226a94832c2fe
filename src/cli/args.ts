/**
 * Command-line parsing for the CLI: node:util parseArgs, except that an argument like `-IFoc26…` (a key id or a
 * client id: base64url values may start with `-`) is a value, not a cluster of short options. The CLI has no short
 * options, so a single dash followed by anything but a dash is never an option.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Marks an argument that only looks like a short option while parseArgs runs; taken off again afterwards. */
const AS_VALUE = '\u0000';

const unmark = (value: unknown): unknown =>
  typeof value === 'string' && value.startsWith(AS_VALUE)
    ? value.slice(AS_VALUE.length)
    : Array.isArray(value)
      ? value.map(unmark)
      : value;

export function parseCliArgs<T extends ParseArgsConfig & { args: string[] }>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  const args = config.args.map((arg) => (/^-[^-]/.test(arg) ? AS_VALUE + arg : arg));
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs({ ...config, args });
  } catch (err) {
    if (err instanceof Error) err.message = err.message.replaceAll(AS_VALUE, '');
    throw err;
  }
  const values = parsed.values as Record<string, unknown>;
  for (const key of Object.keys(values)) values[key] = unmark(values[key]);
  const positionals = parsed.positionals as string[] | undefined;
  if (positionals) for (let i = 0; i < positionals.length; i++) positionals[i] = unmark(positionals[i]) as string;
  return parsed;
}

/** Helpers for reading driver rows into records (pg and PGlite return the same shapes, bigint as string). */
import type { JsonObject } from '../../model/ports.js';

export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

/** A nullable text[] column: absent when NULL. */
export function optStrings(v: unknown): string[] | undefined {
  return v === null || v === undefined ? undefined : strings(v);
}

export function optString(v: unknown): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a driver value of a text column, never an object
  return v === null || v === undefined ? undefined : String(v);
}

export function optNumber(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : Number(v);
}

/** Drops undefined properties so records read back equal the ones saved. */
export function compact<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

/** A jsonb column as a JSON object (pg parses jsonb; PGlite too, but a string is tolerated). */
export function jsonObject(value: unknown): JsonObject {
  return (typeof value === 'string' ? JSON.parse(value) : value) as JsonObject;
}

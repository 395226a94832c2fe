/** What a tenant id may be: one lowercase DNS-label-like path segment, safe in URLs, Redis keys and SQL. */
export const TENANT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether `id` has the form of a tenant id (whether it is free is the registry's question). */
export function isTenantId(id: string): boolean {
  return TENANT_ID.test(id);
}

/** Client authentication for endpoints other than token (revocation RFC 7009 §2.1, introspection RFC 7662 §2.1). */
import { authenticateClient, presentedCredentials } from '../core/client-auth.js';
import { InvalidClient } from '../core/errors.js';
import type { Deps } from '../context.js';
import type { ClientRecord } from '../storage/types.js';

/** Authenticates the calling client from the Authorization header or the form; fails with invalid_client. */
export async function requireClient(
  params: Record<string, string | string[] | undefined>,
  authorization: string | undefined,
  deps: Pick<Deps, 'clients' | 'pepper' | 'clock'>,
): Promise<ClientRecord> {
  const presented = presentedCredentials(authorization, {
    client_id: params.client_id as string | undefined,
    client_secret: params.client_secret as string | undefined,
  });
  if (!presented) throw new InvalidClient('client authentication is required');
  return authenticateClient(presented, deps);
}

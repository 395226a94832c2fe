/**
 * The browser's sign-in session: found from the id its session cookie carries (http/ checks the cookie's signature
 * and hands over the id), started by a sign-in, and the one rule for when it may stand in for a fresh sign-in.
 */
import { randomToken } from '../core/crypto.js';
import { isFederated, isMultiFactor } from '../core/authentication.js';
import type { Deps } from '../context.js';
import type { SessionStore, UserStore } from '../model/ports.js';
import type { SessionRecord, UserRecord } from '../model/records.js';
import { needsSecondFactor } from './second-factor.js';

export type SessionLookupDeps = Pick<Deps, 'config'> & {
  storage: Pick<SessionStore, 'getSession'> & Pick<UserStore, 'getUser'>;
};
export type SessionStartDeps = Pick<Deps, 'clock' | 'config'> & { storage: Pick<SessionStore, 'saveSession'> };

/**
 * The session `sessionId` names, if it is live and still meets its user's sign-in policy; undefined for a browser
 * without one. A session signed in with a password alone no longer stands for a user who has a second factor since,
 * or who must have one now (`gatehouse user mfa --require`, config `mfa.required`): they sign in again. A session
 * from an upstream sign-in is the upstream's to judge: the local second-factor policy does not apply to it.
 */
export async function findSession(
  sessionId: string | undefined,
  deps: SessionLookupDeps,
): Promise<SessionRecord | undefined> {
  return (await findSignedIn(sessionId, deps))?.session;
}

/** {@link findSession} with the user it read to apply the policy, for callers that show who is signed in. */
export async function findSignedIn(
  sessionId: string | undefined,
  deps: SessionLookupDeps,
): Promise<{ session: SessionRecord; user: UserRecord } | undefined> {
  const session = sessionId ? await deps.storage.getSession(sessionId) : undefined;
  if (!session) return undefined;
  const user = await deps.storage.getUser(session.userId);
  if (!user || user.disabled === true) return undefined;
  if (!isMultiFactor(session.amr) && !isFederated(session.amr) && needsSecondFactor(user, deps.config)) {
    return undefined;
  }
  return { session, user };
}

/** Starts a session for `userId`, signed in now by the methods `amr` (RFC 8176); http/ sets its cookie. */
export async function startSession(userId: string, amr: string[], deps: SessionStartDeps): Promise<SessionRecord> {
  const now = deps.clock.now();
  const session: SessionRecord = {
    id: randomToken(),
    userId,
    authTime: now,
    amr,
    createdAt: now,
    expiresAt: now + deps.config.session.ttl * 1000,
  };
  await deps.storage.saveSession(session);
  return session;
}

/**
 * The browser session, when it may stand in for a sign-in (the one rule for /authorize and the interaction pages):
 * not when prompt=login asked for a fresh one, nor when the sign-in is older than max_age (OIDC Core §3.1.2.1). A
 * session from an upstream sign-in never stands in for another request: each request goes upstream again (silently
 * when the upstream remembers the user), so every grant gets its own upstream tokens, bound to its client.
 */
export function sessionMayStandIn(
  session: SessionRecord | undefined,
  prompt: readonly string[],
  maxAge: number | undefined,
  now: number,
): SessionRecord | undefined {
  if (!session || prompt.includes('login') || isFederated(session.amr)) return undefined;
  if (maxAge !== undefined && now - session.authTime > maxAge * 1000) return undefined;
  return session;
}

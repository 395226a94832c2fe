/**
 * The browser's sign-in session: found from the id its session cookie carries (http/ checks the cookie's signature
 * and hands over the id), started by a sign-in, and the one rule for when it may stand in for a fresh sign-in.
 */
import { randomToken } from '../core/crypto.js';
import type { Deps } from '../context.js';
import type { SessionStore } from '../model/ports.js';
import type { SessionRecord } from '../model/records.js';

export type SessionLookupDeps = { storage: Pick<SessionStore, 'getSession'> };
export type SessionStartDeps = Pick<Deps, 'clock' | 'config'> & { storage: Pick<SessionStore, 'saveSession'> };

/** The session `sessionId` names, if it is live; undefined for a browser without one. */
export async function findSession(
  sessionId: string | undefined,
  deps: SessionLookupDeps,
): Promise<SessionRecord | undefined> {
  return sessionId ? deps.storage.getSession(sessionId) : undefined;
}

/** Starts a session for `userId`, signed in now; http/ sets its cookie. */
export async function startSession(userId: string, deps: SessionStartDeps): Promise<SessionRecord> {
  const now = deps.clock.now();
  const session: SessionRecord = {
    id: randomToken(),
    userId,
    authTime: now,
    createdAt: now,
    expiresAt: now + deps.config.session.ttl * 1000,
  };
  await deps.storage.saveSession(session);
  return session;
}

/**
 * The browser session, when it may stand in for a sign-in (the one rule for /authorize and the interaction pages):
 * not when prompt=login asked for a fresh one, nor when the sign-in is older than max_age (OIDC Core §3.1.2.1).
 */
export function sessionMayStandIn(
  session: SessionRecord | undefined,
  prompt: readonly string[],
  maxAge: number | undefined,
  now: number,
): SessionRecord | undefined {
  if (!session || prompt.includes('login')) return undefined;
  if (maxAge !== undefined && now - session.authTime > maxAge * 1000) return undefined;
  return session;
}

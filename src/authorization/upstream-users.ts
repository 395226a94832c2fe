/**
 * Who an upstream identity is here: the stable Gatehouse user (`sub`) for (upstream issuer, upstream subject).
 *
 * - An identity maps to a user whose id is derived from (tenant, issuer, subject) (upstreamUserId): the same upstream
 *   user always gets the same `sub`, on every replica and store, with no index to keep; two upstreams (two issuers)
 *   never share one, and neither do two tenants (like config users' ids, server.ts staticUserId). The user is made at
 *   the first sign-in, without a password (passwordHash ''), named `<upstream id>:<upstream subject>` (usernames are
 *   unique per tenant; upstream ids are unique in the config; a local user already holding that name, or an upstream
 *   whose issuer changed under the same id, gets the name with a part of the id appended).
 * - With `linkByVerifiedEmail` on that upstream, an identity whose email the upstream says is verified is linked
 *   instead to the one local account (a user with a password) with the same verified email, if there is exactly one:
 *   an upstream_link record (under a hash of issuer and subject, owned by that user) remembers it, and later sign-ins
 *   follow the link, whatever the setting says then. An identity that has its own user already is never re-linked.
 */
import { createHash } from 'node:crypto';
import { hashToken } from '../core/crypto.js';
import type { Deps } from '../context.js';
import type { ExpiringRecordStore, UserStore } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { UserRecord } from '../model/records.js';
import type { UpstreamIdentity } from '../upstream/provider.js';
import { linksByVerifiedEmail } from '../upstream/flow-settings.js';

export type UpstreamUserDeps = Pick<Deps, 'clock' | 'config' | 'logger' | 'tenant'> & {
  storage: Pick<UserStore, 'getUser' | 'getUserByUsername' | 'saveUser' | 'listUsers'> & ExpiringRecordStore;
};

/** How long a link lives without a sign-in that renews it. */
const LINK_TTL_MS = 400 * 24 * 3600_000;

/** The user id an upstream identity maps to when it is not linked to a local account: stable, per tenant. */
export function upstreamUserId(issuer: string, subject: string, tenant: string | undefined): string {
  return createHash('sha256')
    .update(JSON.stringify(['gatehouse upstream user', tenant ?? '', issuer, subject]))
    .digest('base64url')
    .slice(0, 22);
}

/** A user who signs in upstream only (no password signs them in). */
export function isUpstreamOnly(user: UserRecord): boolean {
  return user.passwordHash === '';
}

const linkId = (issuer: string, subject: string) => hashToken(JSON.stringify(['upstream-link', issuer, subject]));

/** The Gatehouse user of a validated upstream identity: found, linked, or made now. */
export async function upstreamUser(identity: UpstreamIdentity, deps: UpstreamUserDeps): Promise<UserRecord> {
  const { issuer, subject, upstreamId } = identity;
  const now = deps.clock.now();
  const links = recordsOf(deps.storage, RECORD_KINDS.upstreamLink);
  const link = await links.get(linkId(issuer, subject));
  if (link) {
    const linked = await deps.storage.getUser(link.userId);
    if (linked) {
      await links.put({ ...link, expiresAt: now + LINK_TTL_MS });
      return linked;
    }
  }
  const id = upstreamUserId(issuer, subject, deps.tenant);
  const own = await deps.storage.getUser(id);
  if (own) return refreshProfile(own, identity, deps);

  const local = await localAccountByEmail(identity, deps);
  if (local) {
    await links.put({
      id: linkId(issuer, subject),
      userId: local.id,
      upstreamId,
      upstreamIssuer: issuer,
      upstreamSubject: subject,
      linkedAt: now,
      expiresAt: now + LINK_TTL_MS,
    });
    deps.logger.info({ userId: local.id, upstreamId }, 'upstream identity linked to a local account by verified email');
    return local;
  }

  const user: UserRecord = {
    id,
    username: await freeUsername(`${upstreamId}:${subject}`, id, deps),
    passwordHash: '',
    ...profileOf(identity),
    createdAt: now,
    updatedAt: now,
  };
  await deps.storage.saveUser(user);
  deps.logger.info({ userId: id, upstreamId }, 'user made by a first upstream sign-in');
  return user;
}

/** What the upstream says of the user that goes into the user record (and so into ID tokens and userinfo). */
function profileOf(identity: UpstreamIdentity): Pick<UserRecord, 'email' | 'emailVerified' | 'name'> {
  return {
    ...(identity.email !== undefined && { email: identity.email, emailVerified: identity.emailVerified === true }),
    ...(identity.name !== undefined && { name: identity.name }),
  };
}

/** A user of this upstream keeps the upstream's email and name; saved only when they changed. */
async function refreshProfile(user: UserRecord, identity: UpstreamIdentity, deps: UpstreamUserDeps) {
  if (!isUpstreamOnly(user)) return user;
  const profile = profileOf(identity);
  if (profile.email === user.email && profile.emailVerified === user.emailVerified && profile.name === user.name) {
    return user;
  }
  const { email: _e, emailVerified: _v, name: _n, ...rest } = user;
  const updated: UserRecord = { ...rest, ...profile, updatedAt: deps.clock.now() };
  await deps.storage.saveUser(updated);
  return updated;
}

/**
 * The one local account (with a password and a verified email) the identity's verified email names, when its
 * upstream links by verified email. None when the email is not verified upstream, or two accounts have it.
 */
async function localAccountByEmail(
  identity: UpstreamIdentity,
  deps: UpstreamUserDeps,
): Promise<UserRecord | undefined> {
  if (!linksByVerifiedEmail(deps.config, identity.upstreamId)) return undefined;
  if (identity.emailVerified !== true || !identity.email) return undefined;
  const email = identity.email.toLowerCase();
  // No store indexes users by email; this runs once per identity (the link is remembered).
  const matches = (await deps.storage.listUsers()).filter(
    (u) => !isUpstreamOnly(u) && u.emailVerified === true && u.email?.toLowerCase() === email,
  );
  if (matches.length > 1) {
    deps.logger.warn(
      { upstreamId: identity.upstreamId, accounts: matches.length },
      'upstream identity not linked: several local accounts have its verified email',
    );
    return undefined;
  }
  return matches[0];
}

/** `wanted`, unless another user holds it: then with a part of the user's id appended. */
async function freeUsername(wanted: string, id: string, deps: UpstreamUserDeps): Promise<string> {
  const holder = await deps.storage.getUserByUsername(wanted);
  return holder && holder.id !== id ? `${wanted}#${id.slice(0, 8)}` : wanted;
}

export type LocalUsersDeps = Pick<Deps, 'clock'> & { storage: Pick<UserStore, 'listUsers'> };

/** How long the answer of hasLocalUsers is kept per issuer. */
const LOCAL_USERS_TTL_MS = 30_000;
const localUsersSeen = new WeakMap<object, { value: Promise<boolean>; until: number }>();

/**
 * Whether any user signs in with a password here (the login page then shows the password form beside the upstreams;
 * without, and with one upstream, it goes upstream at once). Users are listed (no store counts them by kind), so the
 * answer is kept for 30 seconds per store.
 */
export function hasLocalUsers(deps: LocalUsersDeps): Promise<boolean> {
  const now = deps.clock.now();
  const seen = localUsersSeen.get(deps.storage);
  if (seen && seen.until > now) return seen.value;
  const value = deps.storage.listUsers().then((users) => users.some((u) => !isUpstreamOnly(u)));
  localUsersSeen.set(deps.storage, { value, until: now + LOCAL_USERS_TTL_MS });
  // A failed listing is not remembered.
  value.catch(() => localUsersSeen.delete(deps.storage));
  return value;
}

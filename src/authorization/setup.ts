/**
 * First run: a deployment that starts with no users (none in the store, none in the config file) and no upstream
 * identity providers prints a one-time setup link (`/setup?token=...`, valid {@link SETUP_LINK_TTL_MS}), where the
 * first administrator chooses a username and password. The link is an expiring record keyed by the token's hash,
 * taken once (ExpiringRecordStore.takeRecord), so it works on any replica and only once; once a user exists every
 * link is dead (they are deleted, and a taken link creates nobody while a user exists). Only the deployment has one:
 * a tenant is made by an administrator, who adds its users (admin API, `gatehouse user add --tenant`).
 */
import { hashPassword } from '../core/password.js';
import { passwordProblem } from '../core/password-policy.js';
import { hashToken, randomId, randomToken } from '../core/crypto.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { ExpiringRecordStore, ReplayGuard, UserStore } from '../model/ports.js';
import { RECORD_KINDS, SETUP_OWNER, recordsOf } from '../model/record-kinds.js';

/** The setup page and its form (`GET /setup?token=`, `POST /setup`): HTML, its errors included. */
export const setupDeclaration = {
  path: '/setup',
  pages: true,
} satisfies EndpointDeclaration;

/** How long a printed setup link works. */
export const SETUP_LINK_TTL_MS = 15 * 60_000;

export type SetupDeps = Pick<Deps, 'config' | 'clock' | 'passwordPolicy' | 'logger' | 'tenant'> & {
  storage: Pick<UserStore, 'pageUsers' | 'saveUser'> & ExpiringRecordStore & ReplayGuard;
};

/**
 * Whether the store has a user: a page of one (never the whole list). A page may come back short with more after it
 * (UserStore.pageUsers), so an empty page with a cursor reads on, a few times, then counts as "yes".
 */
export async function anyUser(storage: Pick<UserStore, 'pageUsers'>): Promise<boolean> {
  let cursor: string | undefined;
  for (let i = 0; i < 5; i++) {
    const page = await storage.pageUsers({ limit: 1, ...(cursor !== undefined && { cursor }) });
    if (page.items.length > 0) return true;
    if ((cursor = page.nextCursor) === undefined) return false;
  }
  return true;
}

/** Stores that have had a user: a user never un-exists for the sign-in pages' hint (a cheap check once true). */
const hadUsers = new WeakSet<object>();

/**
 * Whether this issuer still waits for its first user: the deployment (never a tenant) with no user in the store or
 * the config file and no upstream identity provider. One page of one user read while true; nothing once a user was seen.
 */
export async function awaitingFirstUser(deps: SetupDeps & Pick<Deps, 'upstreams'>): Promise<boolean> {
  const { config } = deps;
  // A deployment that only hosts tenants (config `tenants`) has no users of its own, and that is fine.
  if (deps.tenant !== undefined || config.users.length > 0 || config.tenants.length > 0 || deps.upstreams.size > 0) {
    return false;
  }
  if (hadUsers.has(deps.storage)) return false;
  if (await anyUser(deps.storage)) {
    hadUsers.add(deps.storage);
    return false;
  }
  return true;
}

/** Makes a new setup link and returns its URL (the token is only in the URL: never log it). */
export async function issueSetupLink(
  deps: Pick<Deps, 'config' | 'clock'> & { storage: ExpiringRecordStore },
): Promise<{ url: string; expiresAt: number }> {
  const token = randomToken();
  const now = deps.clock.now();
  const expiresAt = now + SETUP_LINK_TTL_MS;
  await recordsOf(deps.storage, RECORD_KINDS.setupLink).put({ id: hashToken(token), createdAt: now, expiresAt });
  const url = new URL(`${deps.config.issuer}${setupDeclaration.path}`);
  url.searchParams.set('token', token);
  return { url: url.href, expiresAt };
}

/** A token as it may arrive: 43 base64url characters (randomToken); anything else is no link. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** Whether `token` names a live setup link (the page shows the form only then; nothing is used up). */
export async function setupLinkLive(token: string | undefined, deps: SetupDeps): Promise<boolean> {
  if (!token || !TOKEN.test(token)) return false;
  return (await recordsOf(deps.storage, RECORD_KINDS.setupLink).get(hashToken(token))) !== undefined;
}

/** What the setup form did. */
export type SetupResult =
  | { ok: true; username: string }
  /** `dead`: the link expired, was used, or a user exists; the form cannot be tried again. */
  | { ok: false; error: SetupError; detail?: string; dead: boolean };

export type SetupError = 'username' | 'password' | 'dead';

const USERNAME = /^[^\p{Cc}\p{Cf}\p{Z}]{1,100}$/u;

/**
 * Creates the first administrator from the setup form. The username and password are checked first (a refused
 * password leaves the link usable); then the link is taken (once, on any replica) and the user is saved only while
 * the store has no user at all. Every other setup link is deleted after.
 */
export async function completeSetup(
  form: { token?: string; username?: string; password?: string },
  deps: SetupDeps,
): Promise<SetupResult> {
  const token = form.token ?? '';
  if (!TOKEN.test(token)) return { ok: false, error: 'dead', dead: true };
  const username = (form.username ?? '').trim();
  if (!USERNAME.test(username)) return { ok: false, error: 'username', dead: false };
  const password = form.password ?? '';
  const problem = passwordProblem(password, deps.passwordPolicy, username);
  if (problem) return { ok: false, error: 'password', detail: problem, dead: false };
  const links = recordsOf(deps.storage, RECORD_KINDS.setupLink);
  if (!(await links.get(hashToken(token)))) return { ok: false, error: 'dead', dead: true };
  // Hash before taking: the slow step must not sit between the take and the save.
  const passwordHash = await hashPassword(password, deps.config.passwordHashing.log2N);
  const taken = await links.take(hashToken(token));
  if (!taken || (await anyUser(deps.storage))) return { ok: false, error: 'dead', dead: true };
  const now = deps.clock.now();
  // Replicas that started together each printed a link: two taken at once would both see no user yet. One claim in
  // the replay guard lets one of them through. It lasts as long as a link does, so it outlives every link alive now;
  // after that, anyUser above suffices (the winner's user is saved right below).
  if (!(await deps.storage.firstUse('setup:first-administrator', now + SETUP_LINK_TTL_MS))) {
    return { ok: false, error: 'dead', dead: true };
  }
  await deps.storage.saveUser({ id: randomId(), username, passwordHash, admin: true, createdAt: now, updatedAt: now });
  hadUsers.add(deps.storage);
  await deps.storage.deleteRecordsOwnedBy(SETUP_OWNER, RECORD_KINDS.setupLink.name);
  deps.logger.info({ username }, 'first administrator created on the setup page; setup links deleted');
  return { ok: true, username };
}

/**
 * The interaction: sign-in and consent for a pending authorization request. Any replica can serve any step, since
 * the interaction lives in the store. Outcomes are typed; ui/ renders them and http/ sets cookies.
 */
import { safeEqual } from '../core/crypto.js';
import { AccessDenied, InvalidRequest } from '../model/errors.js';
import { verifyPassword, verifyPasswordDummy } from '../core/password.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { ConsentStore, InteractionStore, UserStore } from '../model/ports.js';
import type { ClientRecord, InteractionRecord, SessionRecord, UserRecord } from '../model/records.js';
import { errorRedirect, issueCode, type IssueCodeDeps } from './code.js';
import { consentCovers, recordConsent, type RecordConsentDeps } from './consent.js';
import { admitLogin, type ThrottleDeps } from './login-throttle.js';
import { upgradePasswordHash, type PasswordUpgradeDeps } from './password-upgrade.js';
import {
  findSession,
  sessionMayStandIn,
  startSession,
  type SessionLookupDeps,
  type SessionStartDeps,
} from './session.js';

/** What loading an interaction for a browser uses. */
type LoadDeps = Pick<Deps, 'clients'> & { storage: Pick<InteractionStore, 'getInteraction'> };
/** GET /interaction/:id: the session, the user and their consent; finishing it when the consent covers the request. */
export type ViewInteractionDeps = LoadDeps &
  SessionLookupDeps &
  IssueCodeDeps &
  Pick<Deps, 'clock'> & {
    storage: Pick<UserStore, 'getUser'> & Pick<ConsentStore, 'getConsent'> & Pick<InteractionStore, 'takeInteraction'>;
  };
/** POST /interaction/:id/login: the throttle, the user's password, the new session, the interaction signed in. */
export type SubmitLoginDeps = LoadDeps &
  ThrottleDeps &
  PasswordUpgradeDeps &
  SessionStartDeps &
  Pick<Deps, 'logger' | 'config'> & {
    storage: Pick<UserStore, 'getUserByUsername'> & Pick<InteractionStore, 'saveInteraction'>;
  };
/** POST /interaction/:id/consent: the session, the consent recorded, the code issued. */
export type SubmitConsentDeps = LoadDeps &
  SessionLookupDeps &
  RecordConsentDeps &
  IssueCodeDeps &
  Pick<Deps, 'clock' | 'config'> & { storage: Pick<InteractionStore, 'takeInteraction'> };

/** The sign-in and consent pages of a pending request: `/interaction/:id`, its `login` and `consent` forms. */
export const interactionDeclaration = {
  path: '/interaction',
  subPaths: true,
  pages: true,
} satisfies EndpointDeclaration;

/**
 * The interaction is gone (expired, finished, or never existed) or belongs to another browser: shown as a page,
 * never redirected. One message for all, so a stranger's request learns nothing about whether the id is live.
 */
export class InteractionExpired extends InvalidRequest {
  constructor() {
    super(
      'this sign-in request has expired, was already completed, or was opened in another browser; return to the application and start again',
    );
    this.redirectable = false;
  }
}

export type InteractionView =
  | { stage: 'login'; interaction: InteractionRecord; client: ClientRecord; error?: string; username?: string }
  | { stage: 'consent'; interaction: InteractionRecord; client: ClientRecord; user: UserRecord; newScopes: string[] }
  | { stage: 'done'; location: string };

/**
 * Loads the interaction for the browser whose binding is `binding` (http/cookies browserBinding of its nonce cookie).
 * Only the browser that started the request may continue it: its id in a URL is not a credential (RFC 9700 §4.7).
 */
async function load(
  id: string,
  binding: string | undefined,
  deps: LoadDeps,
): Promise<{ interaction: InteractionRecord; client: ClientRecord }> {
  const interaction = await deps.storage.getInteraction(id);
  if (!interaction || !binding || !interaction.browserBinding || !safeEqual(binding, interaction.browserBinding)) {
    throw new InteractionExpired();
  }
  const client = await deps.clients.getClient(interaction.clientId);
  if (!client) throw new InteractionExpired();
  return { interaction, client };
}

/** The browser session's user, when it may stand in for a sign-in in this interaction (see sessionMayStandIn). */
function sessionUser(
  interaction: InteractionRecord,
  session: SessionRecord | undefined,
  now: number,
): string | undefined {
  return sessionMayStandIn(session, interaction.prompt, interaction.maxAge, now)?.userId;
}

/**
 * Decides what the browser sees for GET /interaction/:id. `sessionId` is the id the browser's session cookie carries;
 * `binding` names the requesting browser (see load).
 */
export async function viewInteraction(
  id: string,
  sessionId: string | undefined,
  binding: string | undefined,
  deps: ViewInteractionDeps,
): Promise<InteractionView> {
  const session = await findSession(sessionId, deps);
  const { interaction, client } = await load(id, binding, deps);
  // The interaction's own sign-in wins; else a session counts unless prompt=login demanded a fresh one.
  const userId = interaction.userId ?? sessionUser(interaction, session, deps.clock.now());
  // A code, or the consent page naming the user, only for this browser's session of that very user (OIDC Core
  // §3.1.2.3): a sign-in recorded on the interaction is not enough on its own.
  if (!userId || !session || session.userId !== userId) return { stage: 'login', interaction, client };
  const user = await deps.storage.getUser(userId);
  if (!user) return { stage: 'login', interaction, client };
  const consent = await deps.storage.getConsent(userId, client.clientId);
  if (!interaction.prompt.includes('consent') && consentCovers(consent, interaction.scope, interaction.resource)) {
    const taken = await deps.storage.takeInteraction(id);
    if (!taken) throw new InteractionExpired();
    const authTime = interaction.authTime ?? session.authTime;
    return { stage: 'done', location: await issueCode({ ...taken, userId, authTime }, client, consent, deps) };
  }
  const known = new Set(consent?.scope ?? []);
  return { stage: 'consent', interaction, client, user, newScopes: interaction.scope.filter((s) => !known.has(s)) };
}

/** Outcome of a sign-in attempt; `retryAfterSeconds` is set when it was refused by the throttle (429). */
export type LoginOutcome =
  { ok: true; session: SessionRecord } | { ok: false; view: InteractionView; retryAfterSeconds?: number };

/**
 * Checks the username and password for POST /interaction/:id/login and starts a session. `clientAddress` is the
 * remote address, for the per-address limit of the login throttle (config `loginRateLimit`).
 */
export async function submitLogin(
  id: string,
  binding: string | undefined,
  username: string,
  password: string,
  clientAddress: string,
  deps: SubmitLoginDeps,
): Promise<LoginOutcome> {
  const { interaction, client } = await load(id, binding, deps);
  // Before any lookup or hashing: a throttled attempt costs no scrypt, and reads the same for every username.
  const admission = await admitLogin(username, clientAddress, deps);
  if (!admission.allowed) {
    deps.logger.warn({ clientId: client.clientId, limit: admission.limit }, 'sign-in throttled');
    const minutes = Math.ceil(admission.retryAfterSeconds / 60);
    const error = `Too many failed sign-in attempts. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`;
    return {
      ok: false,
      retryAfterSeconds: admission.retryAfterSeconds,
      view: { stage: 'login', interaction, client, error, username },
    };
  }
  const user = username ? await deps.storage.getUserByUsername(username) : undefined;
  // Burn the same time for unknown users so usernames cannot be enumerated by timing.
  const valid = user
    ? await verifyPassword(password, user.passwordHash)
    : (await verifyPasswordDummy(password, deps.config.passwordHashing.log2N), false);
  if (!user || !valid) {
    await admission.failed();
    deps.logger.info({ clientId: client.clientId }, 'sign-in failed');
    return {
      ok: false,
      view: { stage: 'login', interaction, client, error: 'Invalid username or password.', username },
    };
  }
  await admission.succeeded();
  await upgradePasswordHash(user, password, deps);
  const session = await startSession(user.id, deps);
  await deps.storage.saveInteraction({ ...interaction, userId: user.id, authTime: session.authTime });
  return { ok: true, session };
}

/** POST /interaction/:id/consent: approve issues the code, deny returns access_denied (RFC 6749 §4.1.2.1). */
export async function submitConsent(
  id: string,
  sessionId: string | undefined,
  binding: string | undefined,
  decision: string | undefined,
  deps: SubmitConsentDeps,
): Promise<string> {
  const session = await findSession(sessionId, deps);
  const { interaction, client } = await load(id, binding, deps);
  const userId = interaction.userId ?? sessionUser(interaction, session, deps.clock.now());
  // Consent must come from the browser that signed in.
  if (!userId || !session || session.userId !== userId) throw new InteractionExpired();
  if (decision !== 'approve' && decision !== 'deny') throw new InvalidRequest('decision must be approve or deny');
  const taken = await deps.storage.takeInteraction(id);
  if (!taken) throw new InteractionExpired();
  if (decision === 'deny') {
    return errorRedirect(taken.redirectUri, new AccessDenied(), taken.state, deps.config.issuer);
  }
  const consent = await recordConsent(userId, taken, deps);
  const authTime = taken.authTime ?? session.authTime;
  return issueCode({ ...taken, userId, authTime }, client, consent, deps);
}

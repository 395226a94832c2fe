/**
 * The interaction: sign-in and consent for a pending authorization request. Any replica can serve any step, since
 * the interaction lives in the store. Outcomes are typed; ui/ renders them and http/ sets cookies.
 */
import { safeEqual } from '../core/crypto.js';
import { ACR, ACR_VALUES_SUPPORTED, amrOf } from '../core/authentication.js';
import { AccessDenied, InvalidRequest } from '../model/errors.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { ConsentStore, InteractionStore, SessionStore, UserStore } from '../model/ports.js';
import { upstreamEntries } from '../upstream/flow-settings.js';
import type { ClientRecord, InteractionRecord, SessionRecord, UserRecord } from '../model/records.js';
import { errorRedirect, issueCode, type IssueCodeDeps } from './code.js';
import { consentCovers, recordConsent, type RecordConsentDeps } from './consent.js';
import { finishDeviceInteraction, type FinishDeviceDeps } from './device.js';
import { findSession, sessionMayStandIn, type SessionLookupDeps } from './session.js';
import {
  cancelSignIn,
  enrolDuringSignIn,
  pendingPrompt,
  signInWithPassword,
  signInWithSecondFactor,
  type EnrolForm,
  type FactorForm,
  type SignInDeps,
  type SignInOutcome,
  type SecondStepPrompt,
  type SignInPlace,
} from './sign-in.js';
import { goUpstream, type GoUpstreamDeps } from './upstream-sign-in.js';
import { hasLocalUsers, type LocalUsersDeps } from './upstream-users.js';

/** What loading an interaction for a browser uses. */
type LoadDeps = Pick<Deps, 'clients'> & { storage: Pick<InteractionStore, 'getInteraction'> };
/** What the login page offers uses: the upstreams, and whether anyone signs in with a password. */
type LoginOptionsDeps = Pick<Deps, 'upstreams'> & LocalUsersDeps;
/**
 * GET /interaction/:id: the session, the user and their consent; finishing it when the consent covers the request;
 * a pending second step of the sign-in (sign-in.ts).
 */
export type ViewInteractionDeps = LoadDeps &
  SessionLookupDeps &
  IssueCodeDeps &
  SignInDeps &
  LoginOptionsDeps &
  GoUpstreamDeps &
  Pick<Deps, 'clock'> & {
    storage: Pick<UserStore, 'getUser'> & Pick<ConsentStore, 'getConsent'> & Pick<InteractionStore, 'takeInteraction'>;
  };
/** POST /interaction/:id/login, /factor, /enrol: the sign-in steps, then the interaction signed in. */
export type SubmitLoginDeps = LoadDeps &
  SignInDeps &
  LoginOptionsDeps & { storage: Pick<InteractionStore, 'saveInteraction'> };
/** POST /interaction/:id/upstream: the sign-in sent to the chosen upstream. */
export type SubmitUpstreamDeps = LoadDeps & GoUpstreamDeps;
/** POST /interaction/:id/sign-out: the browser's session ended, the interaction back at its login page. */
export type SignOutDeps = LoadDeps & {
  storage: Pick<SessionStore, 'deleteSession'> & Pick<InteractionStore, 'saveInteraction'> & SignInDeps['storage'];
};
/** POST /interaction/:id/consent: the session, the consent recorded, the code issued. */
export type SubmitConsentDeps = LoadDeps &
  SessionLookupDeps &
  RecordConsentDeps &
  IssueCodeDeps &
  FinishDeviceDeps &
  Pick<Deps, 'clock' | 'config'> & { storage: Pick<InteractionStore, 'takeInteraction'> };

/**
 * The sign-in and consent pages of a pending request: `/interaction/:id`, its `login`, `factor`, `enrol`, `consent`
 * and `sign-out` forms. The sign-in is where `acr` comes from, so its values are declared here.
 */
export const interactionDeclaration = {
  path: '/interaction',
  subPaths: true,
  pages: true,
  metadata: (_url, config) => ({
    acr_values_supported: [...ACR_VALUES_SUPPORTED, ...(upstreamEntries(config).length > 0 ? [ACR.federated] : [])],
  }),
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

/** How the login page lets the user sign in: the upstreams (in config order), and the password form or not. */
export interface LoginOptions {
  upstreams: { id: string; name: string }[];
  passwords: boolean;
}

export type InteractionView =
  | {
      stage: 'login';
      interaction: InteractionRecord;
      client: ClientRecord;
      options: LoginOptions;
      error?: string;
      username?: string;
    }
  /** The password was right; a second factor (or its enrolment) is asked for. */
  | {
      stage: 'second_step';
      interaction: InteractionRecord;
      client: ClientRecord;
      prompt: SecondStepPrompt;
    }
  | { stage: 'consent'; interaction: InteractionRecord; client: ClientRecord; user: UserRecord; newScopes: string[] }
  | { stage: 'done'; location: string }
  /** Gone upstream at once (one upstream, no local users): its authorization URL, or the client's error redirect. */
  | { stage: 'upstream'; location: string };

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
  context?: AuditRequestContext,
): Promise<InteractionView> {
  const session = await findSession(sessionId, deps);
  const { interaction, client } = await load(id, binding, deps);
  // The interaction's own sign-in wins; else a session counts unless prompt=login demanded a fresh one.
  const userId = interaction.userId ?? sessionUser(interaction, session, deps.clock.now());
  // A code, or the consent page naming the user, only for this browser's session of that very user (OIDC Core
  // §3.1.2.3): a sign-in recorded on the interaction is not enough on its own.
  if (!userId || !session || session.userId !== userId) return signInView(interaction, client, binding!, deps, context);
  const user = await deps.storage.getUser(userId);
  if (!user) return signInView(interaction, client, binding!, deps, context);
  const consent = await deps.storage.getConsent(userId, client.clientId);
  if (!interaction.prompt.includes('consent') && consentCovers(consent, interaction.scope, interaction.resource)) {
    const taken = await deps.storage.takeInteraction(id);
    if (!taken) throw new InteractionExpired();
    const location = await issueCode(
      { ...taken, ...signedIn(interaction, session, userId) },
      client,
      consent,
      deps,
      context,
    );
    return { stage: 'done', location };
  }
  const known = new Set(consent?.scope ?? []);
  return { stage: 'consent', interaction, client, user, newScopes: interaction.scope.filter((s) => !known.has(s)) };
}

/** Where the sign-in of an interaction happens (sign-in.ts): keyed by the interaction, bound to its browser. */
function signInPlace(interaction: InteractionRecord, binding: string, context?: AuditRequestContext): SignInPlace {
  return {
    key: `interaction:${interaction.id}`,
    binding,
    expiresAt: interaction.expiresAt,
    clientId: interaction.clientId,
    reference: interaction.grantId,
    context,
  };
}

/** What the login page offers: every upstream, and the password form unless only upstream users exist. */
async function loginOptions(deps: LoginOptionsDeps): Promise<LoginOptions> {
  const upstreams = [...deps.upstreams.values()].map(({ id, name }) => ({ id, name }));
  return { upstreams, passwords: upstreams.length === 0 || (await hasLocalUsers(deps)) };
}

/**
 * The sign-in page this browser is at: the second step when one is pending, else the login form; or, with one
 * upstream and nobody signing in with a password, that upstream at once (unless this interaction came back from it
 * already and still needs a sign-in: then the page, so a browser that cannot keep the session never loops).
 */
async function signInView(
  interaction: InteractionRecord,
  client: ClientRecord,
  binding: string,
  deps: SignInDeps & LoginOptionsDeps & GoUpstreamDeps,
  context: AuditRequestContext | undefined,
): Promise<InteractionView> {
  const prompt = await pendingPrompt(signInPlace(interaction, binding, context), deps);
  if (prompt) return { stage: 'second_step', interaction, client, prompt };
  const options = await loginOptions(deps);
  const only = options.upstreams.length === 1 && !options.passwords ? options.upstreams[0] : undefined;
  if (only && !interaction.upstream) {
    return { stage: 'upstream', location: await goUpstream(interaction, only.id, binding, deps, context) };
  }
  return { stage: 'login', interaction, client, options };
}

/** Who signed in for this interaction, when and how: its own sign-in, else the session that stands in. */
function signedIn(interaction: InteractionRecord, session: SessionRecord, userId: string) {
  return {
    userId,
    authTime: interaction.authTime ?? session.authTime,
    amr: amrOf(interaction.userId ? interaction.amr : session.amr),
  };
}

/**
 * Outcome of a sign-in step: signed in (http/ sets the cookie; new recovery codes are shown once before going on),
 * `continue` to the next step's page, or a page to show again (with its status; `retryAfterSeconds` when throttled).
 */
export type LoginOutcome =
  | { kind: 'signed_in'; session: SessionRecord; recoveryCodes?: string[] }
  | { kind: 'continue' }
  | { kind: 'view'; view: InteractionView; status: number; retryAfterSeconds?: number };

/** A finished sign-in step of the interaction: a new session is recorded on it. */
async function afterSignIn(
  interaction: InteractionRecord,
  client: ClientRecord,
  outcome: SignInOutcome,
  deps: SubmitLoginDeps,
): Promise<LoginOutcome> {
  if (outcome.kind === 'continue') return outcome;
  if (outcome.kind === 'prompt') {
    const { prompt, status, retryAfterSeconds } = outcome;
    const view: InteractionView =
      prompt.step === 'password'
        ? {
            stage: 'login',
            interaction,
            client,
            options: await loginOptions(deps),
            error: prompt.error,
            username: prompt.username,
          }
        : { stage: 'second_step', interaction, client, prompt };
    return { kind: 'view', view, status, ...(retryAfterSeconds !== undefined && { retryAfterSeconds }) };
  }
  const { session } = outcome;
  // A password sign-in replaces an upstream one made earlier in this interaction, and its tokens.
  const { upstream: _upstream, ...rest } = interaction;
  await deps.storage.saveInteraction({
    ...rest,
    userId: session.userId,
    authTime: session.authTime,
    amr: amrOf(session.amr),
  });
  return outcome;
}

/**
 * Checks the username and password for POST /interaction/:id/login. `clientAddress` is the remote address, for the
 * per-address limit of the login throttle (config `loginRateLimit`).
 */
export async function submitLogin(
  id: string,
  binding: string | undefined,
  username: string,
  password: string,
  clientAddress: string,
  deps: SubmitLoginDeps,
  context?: AuditRequestContext,
): Promise<LoginOutcome> {
  const { interaction, client } = await load(id, binding, deps);
  const place = signInPlace(interaction, binding!, context);
  const outcome = await signInWithPassword(place, username, password, clientAddress, deps);
  return afterSignIn(interaction, client, outcome, deps);
}

/** POST /interaction/:id/factor: the second factor after the password. */
export async function submitSecondFactor(
  id: string,
  binding: string | undefined,
  form: FactorForm,
  clientAddress: string,
  deps: SubmitLoginDeps,
  context?: AuditRequestContext,
): Promise<LoginOutcome> {
  const { interaction, client } = await load(id, binding, deps);
  const outcome = await signInWithSecondFactor(signInPlace(interaction, binding!, context), form, clientAddress, deps);
  return afterSignIn(interaction, client, outcome, deps);
}

/** POST /interaction/:id/enrol: a user who must have a second factor enrols one, and is signed in by it. */
export async function submitEnrolment(
  id: string,
  binding: string | undefined,
  form: EnrolForm,
  deps: SubmitLoginDeps,
  context?: AuditRequestContext,
): Promise<LoginOutcome> {
  const { interaction, client } = await load(id, binding, deps);
  const outcome = await enrolDuringSignIn(signInPlace(interaction, binding!, context), form, deps);
  return afterSignIn(interaction, client, outcome, deps);
}

/**
 * POST /interaction/:id/sign-out ("Not you?"): ends this browser's session and any pending sign-in, and forgets who
 * signed in for the interaction, which then shows its login page again.
 */
export async function signOutOfInteraction(
  id: string,
  sessionId: string | undefined,
  binding: string | undefined,
  deps: SignOutDeps,
): Promise<void> {
  const { interaction } = await load(id, binding, deps);
  if (sessionId) await deps.storage.deleteSession(sessionId);
  await cancelSignIn(signInPlace(interaction, binding!), deps);
  const { userId: _user, authTime: _time, amr: _amr, upstream: _upstream, ...rest } = interaction;
  await deps.storage.saveInteraction(rest);
}

/** POST /interaction/:id/upstream: sends the sign-in to the upstream chosen on the login page; returns where to. */
export async function submitUpstream(
  id: string,
  binding: string | undefined,
  upstreamId: string | undefined,
  deps: SubmitUpstreamDeps,
  context?: AuditRequestContext,
): Promise<string> {
  const { interaction } = await load(id, binding, deps);
  if (!upstreamId) throw new InvalidRequest('upstream is required');
  return goUpstream(interaction, upstreamId, binding!, deps, context);
}

/** POST /interaction/:id/consent: approve issues the code, deny returns access_denied (RFC 6749 §4.1.2.1). */
export async function submitConsent(
  id: string,
  sessionId: string | undefined,
  binding: string | undefined,
  decision: string | undefined,
  deps: SubmitConsentDeps,
  context?: AuditRequestContext,
): Promise<string> {
  const session = await findSession(sessionId, deps);
  const { interaction, client } = await load(id, binding, deps);
  const userId = interaction.userId ?? sessionUser(interaction, session, deps.clock.now());
  // Consent must come from the browser that signed in.
  if (!userId || !session || session.userId !== userId) throw new InteractionExpired();
  if (decision !== 'approve' && decision !== 'deny') throw new InvalidRequest('decision must be approve or deny');
  const taken = await deps.storage.takeInteraction(id);
  if (!taken) throw new InteractionExpired();
  // A device's interaction (RFC 8628) records the decision for the device's poll instead of redirecting.
  if (taken.deviceCodeHash !== undefined) {
    const device = { ...taken, deviceCodeHash: taken.deviceCodeHash };
    return finishDeviceInteraction(
      device,
      client,
      signedIn(taken, session, userId),
      decision === 'approve',
      deps,
      context,
    );
  }
  if (decision === 'deny') {
    deps.audit.emit(
      {
        type: 'consent.denied',
        clientId: taken.clientId,
        subject: userId,
        ...(taken.grantId !== undefined && { reference: taken.grantId }),
      },
      context,
    );
    return errorRedirect(taken.redirectUri, new AccessDenied(), taken.state, deps.config.issuer);
  }
  const consent = await recordConsent(userId, taken, deps, context);
  return issueCode({ ...taken, ...signedIn(taken, session, userId) }, client, consent, deps, context);
}

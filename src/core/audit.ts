/**
 * Audit events: one structured record per security-relevant step (issue 14 item 4). This file is the schema: every
 * event type and its fields are listed in `AuditEvent` below, and nothing else defines one.
 *
 * Secrets never reach an event, by construction: no event type has a field for a password, secret, code, token,
 * assertion or cookie (ids of records, client ids, subjects, grant ids, key ids, scopes and resources only). A test
 * (test/e2e/audit.test.ts) runs a full flow and scans every collected event for every secret value it used.
 *
 * Emitting: `deps.audit.emit({ type: 'client.registered', clientId, source: 'dynamic' }, context)`. The emitter fills
 * the common fields (`AuditRecord`): time, outcome, tenant (the deps' issuer), and, from the `context` argument (the
 * HTTP request being served: `auditContextOf(request)` in http/request-id.ts, passed down explicitly from the route to
 * whatever emits), requestId, ip and userAgent. An event emitted without one (the CLI) has none of the three.
 * Deliberately no AsyncLocalStorage: on Node 20 an active one runs a promise hook on every promise of the process
 * (+22% instructions per token request, measured); eslint.config.js forbids node:async_hooks in src/.
 * Emitting never throws and never waits: the sinks (the audit log, the webhook queue, the metrics counters) take the
 * record synchronously.
 */
import type { Clock } from './clock.js';

/** How a step ended. */
export type AuditOutcome = 'success' | 'failure' | 'denied';

/** Fields any event may carry: who it is about. */
interface Subjects {
  /** The OAuth client concerned (client_id). */
  clientId?: string;
  /** The user concerned (`sub`). */
  subject?: string;
  /**
   * The flow trace reference of the authorization the event belongs to (core/flow-trace.ts): fixed at /authorize and
   * shown on its error pages; it becomes the grant id of the code, so events naming a `grantId` belong to it too.
   */
  reference?: string;
}

/** How a user signed in. */
export type SignInMethod = 'password' | 'upstream' | 'passkey';

/**
 * Every audit event type and its own fields (besides `clientId` / `subject`, which every type may carry). One union,
 * discriminated by `type`; `AUDIT_OUTCOMES` gives each type's outcome unless the event states one.
 */
export type AuditEvent = Subjects &
  (
    | /** A user signed in (the password and any second factor passed, or an upstream IdP vouched). */ {
        type: 'signin.succeeded';
        subject: string;
        method: SignInMethod;
        /** RFC 8176 authentication method references of the session (`pwd`, `otp`, `mfa`, ...). */
        amr?: string[];
        /** The upstream IdP id, for `method: 'upstream'`. */
        upstream?: string;
      }
    | /** A sign-in attempt failed. `username` is what was typed (never the password). */ {
        type: 'signin.failed';
        username?: string;
        reason: 'invalid_credentials' | 'second_factor' | 'upstream' | 'disabled';
        upstream?: string;
      }
    | /** The login throttle refused an attempt before checking the password. */ {
        type: 'signin.throttled';
        username?: string;
        /** What was throttled: the account (username) or the client address. */
        key: 'account' | 'ip';
      }
    | /** A user came back from an upstream IdP (the callback); `signin.succeeded` follows when it maps to a user. */ {
        type: 'upstream.signin';
        upstream: string;
        outcome?: AuditOutcome;
        /** Why it failed (the IdP's error code or ours), on failure. */
        error?: string;
      }
    | /** /authorize accepted a request: the user is sent to sign in or to consent, or a code is issued at once. */ {
        type: 'authorize.accepted';
        clientId: string;
        reference: string;
        scopes: string[];
        resources: string[];
        /** What comes next: the login page, the consent page, or a code at once (a session and a consent cover it). */
        next: 'login' | 'consent' | 'code';
      }
    | /**
       * /authorize refused a request, on a page or by redirecting the error to the client. `reason` says why in plain
       * words (registered and sent redirect URIs, scopes, resources, client ids): never a state, code or verifier.
       */ {
        type: 'authorize.refused';
        /** The OAuth error code. */
        error: string;
        reason: string;
        /** Shown on a page (the client or redirect_uri cannot be trusted) or redirected to the client. */
        shown: 'page' | 'redirect';
      }
    | /** The user approved the client's request on the consent page (a stored consent that covers a request: code.issued only). */ {
        type: 'consent.granted';
        clientId: string;
        subject: string;
        scopes: string[];
        resources: string[];
      }
    | /** The user denied the client's request on the consent page. */ {
        type: 'consent.denied';
        clientId: string;
        subject: string;
      }
    | /** A stored consent was withdrawn (account page, admin). */ {
        type: 'consent.revoked';
        clientId: string;
        subject: string;
      }
    | /** An authorization code was issued (the value is never recorded). */ {
        type: 'code.issued';
        clientId: string;
        subject: string;
        /** The grant the code starts (its tokens carry it: token.issued, refresh.rotated, grant.revoked). */
        grantId: string;
        scopes: string[];
        resources: string[];
      }
    | /** An authorization code was redeemed a second time: its grant is revoked (RFC 6749 §4.1.2). */ {
        type: 'code.replayed';
        grantId?: string;
      }
    | /** The token endpoint issued tokens. */ {
        type: 'token.issued';
        /** The grant_type parameter (RFC 6749 names, URNs for the extension grants). */
        grantType: string;
        scopes: string[];
        resources: string[];
        grantId?: string;
        refreshToken?: boolean;
        idToken?: boolean;
        /** Token exchange (RFC 8693): the upstream whose token was handed out; the subject token's client. */
        upstream?: string;
        subjectClientId?: string;
      }
    | /**
       * The token endpoint refused a request (any OAuth error). `clientId` is the one presented (not proven when the
       * error is invalid_client).
       */ {
        type: 'token.refused';
        grantType?: string;
        /** The OAuth error code. */
        error: string;
        grantId?: string;
        resources?: string[];
        upstream?: string;
        /** Why, beyond the code (e.g. `upstream_sign_in_required`). */
        reason?: string;
      }
    | /** An access token was revoked by its id (RFC 7009); a refresh token revokes its grant (grant.revoked). */ {
        type: 'token.revoked';
        /** The token's id (its `jti` claim: an identifier, not the token). */
        jti: string;
      }
    | /** A refresh token was exchanged for a new one (the old one is spent). */ {
        type: 'refresh.rotated';
        grantId: string;
      }
    | /** A spent refresh token came back: the whole grant is revoked (OAuth 2.1 §4.3.1). */ {
        type: 'refresh.reuse_detected';
        grantId: string;
      }
    | /** A grant (its refresh tokens and access tokens) was revoked. */ {
        type: 'grant.revoked';
        grantId?: string;
        reason: 'revocation_endpoint' | 'code_replay' | 'refresh_reuse' | 'consent_revoked' | 'user' | 'admin';
      }
    | /** A client was created: dynamic registration (RFC 7591), the admin API, the CLI. */ {
        type: 'client.registered';
        clientId: string;
        source: 'dynamic' | 'admin' | 'static' | 'cli';
        clientName?: string;
        redirectUris?: string[];
        grantTypes?: string[];
        authMethod?: string;
        softwareId?: string;
      }
    | /** A re-registration returned an existing client instead of a new one (DCR hygiene). */ {
        type: 'client.deduplicated';
        clientId: string;
        softwareId?: string;
      }
    | /** A client's metadata or secret changed (RFC 7592, admin). */ {
        type: 'client.updated';
        clientId: string;
        source: 'dynamic' | 'admin' | 'cli';
        secretRotated?: boolean;
      }
    | /** A client was deleted (RFC 7592, admin, the cleanup job). */ {
        type: 'client.deleted';
        clientId: string;
        source: 'dynamic' | 'admin' | 'cli' | 'cleanup';
      }
    | /** A new signing key became current. */ {
        type: 'key.rotated';
        kid: string;
        alg: string;
        previousKid?: string;
        source: 'schedule' | 'admin' | 'cli';
      }
    | /** A call to the admin API. */ {
        type: 'admin.call';
        method: string;
        /** The route pattern (`/admin/clients/:id`), never a raw URL with a query. */
        route: string;
        status: number;
        /** Who called: 'token' (the configured admin token) or the admin client's id. */
        actor: string;
        outcome?: AuditOutcome;
      }
    | /** A rate limit refused a request (429). */ {
        type: 'rate_limit.hit';
        /** The endpoint (`register`, `token`, `authorize`, `introspect`, `revoke`, ...). */
        endpoint: string;
        /** What the limit counts by. */
        keyKind: 'ip' | 'client' | 'total' | 'browser';
        retryAfterSeconds?: number;
      }
    | /** A device asked for authorization (RFC 8628 §3.1): its codes were issued (their values are never recorded). */ {
        type: 'device.requested';
        clientId: string;
        reference: string;
        scopes: string[];
        resources: string[];
      }
    | /**
       * A user code was refused at the device page: `reason` says why (never the code typed): malformed, unknown
       * (also used or expired), throttled.
       */ {
        type: 'device.code_refused';
        reason: 'malformed' | 'unknown' | 'throttled';
      }
    | /** A user entered a valid user code: the sign-in and consent for the device follow. */ {
        type: 'device.code_accepted';
        clientId: string;
        reference: string;
      }
    | /** The user approved the device on the consent page; it may now redeem its device code once. */ {
        type: 'device.authorized';
        clientId: string;
        subject: string;
        reference: string;
        scopes: string[];
        resources: string[];
      }
    | /** The user denied the device; its polls get access_denied. */ {
        type: 'device.denied';
        clientId: string;
        subject: string;
        reference: string;
      }
    | /** A grant's upstream tokens did not belong to it (a binding check failed; nothing was handed out). */ {
        type: 'upstream.binding_mismatch';
        grantId: string;
        mismatch: string;
      }
  );

/** Every event type. */
export type AuditEventType = AuditEvent['type'];

/** The outcome of each type when the event does not state one. */
export const AUDIT_OUTCOMES: Record<AuditEventType, AuditOutcome> = {
  'signin.succeeded': 'success',
  'signin.failed': 'failure',
  'signin.throttled': 'denied',
  'upstream.signin': 'success',
  'authorize.accepted': 'success',
  'authorize.refused': 'denied',
  'consent.granted': 'success',
  'consent.denied': 'denied',
  'consent.revoked': 'success',
  'code.issued': 'success',
  'code.replayed': 'denied',
  'token.issued': 'success',
  'token.refused': 'failure',
  'token.revoked': 'success',
  'refresh.rotated': 'success',
  'refresh.reuse_detected': 'denied',
  'grant.revoked': 'success',
  'client.registered': 'success',
  'client.deduplicated': 'success',
  'client.updated': 'success',
  'client.deleted': 'success',
  'key.rotated': 'success',
  'admin.call': 'success',
  'rate_limit.hit': 'denied',
  'upstream.binding_mismatch': 'denied',
  'device.requested': 'success',
  'device.code_refused': 'denied',
  'device.code_accepted': 'success',
  'device.authorized': 'success',
  'device.denied': 'denied',
};

/** Where an event happened: the HTTP request being served, when there is one. */
export interface AuditRequestContext {
  readonly requestId: string;
  readonly ip?: string;
  readonly userAgent?: string;
}

/** An event as written: the common fields, then the event's own. */
export type AuditRecord = AuditEvent & {
  /** ISO 8601, from the injected clock. */
  time: string;
  outcome: AuditOutcome;
  /** The tenant whose issuer it happened at; absent for the deployment's own issuer. */
  tenant?: string;
  requestId?: string;
  ip?: string;
  userAgent?: string;
};

/** Takes a record synchronously; must not throw (a throwing sink is caught and ignored). */
export type AuditSink = (record: AuditRecord) => void;

/** The longest user agent kept (the rest is cut): a header is not a place to store a novel in the audit log. */
const MAX_USER_AGENT = 256;

/**
 * The emitter. One per process (`new Auditor(...)` in server.ts) with the sinks; each issuer's deps get
 * `forTenant(id)`, which shares the sinks and stamps the tenant.
 */
export class Auditor {
  readonly #sinks: AuditSink[];
  readonly #clock: Clock;
  readonly tenant: string | undefined;

  constructor(clock: Clock, sinks: AuditSink[] = [], tenant?: string) {
    this.#clock = clock;
    this.#sinks = sinks;
    this.tenant = tenant;
  }

  /** The emitter of a tenant's issuer (`undefined`: the deployment's): same sinks, its events carry the tenant. */
  forTenant(tenant: string | undefined): Auditor {
    return new Auditor(this.#clock, this.#sinks, tenant);
  }

  /** Adds a sink (metrics subscribe here); every issuer's emitter shares it. Returns a function removing it. */
  subscribe(sink: AuditSink): () => void {
    this.#sinks.push(sink);
    return () => {
      const i = this.#sinks.indexOf(sink);
      if (i >= 0) this.#sinks.splice(i, 1);
    };
  }

  /**
   * Records one event: fills the common fields and hands the record to every sink. Never throws. `context`: the
   * request being served (its id, address and user agent go on the record); absent outside a request.
   */
  emit(event: AuditEvent, context?: AuditRequestContext): void {
    if (this.#sinks.length === 0) return;
    const userAgent = context?.userAgent;
    const record: AuditRecord = {
      time: new Date(this.#clock.now()).toISOString(),
      outcome: AUDIT_OUTCOMES[event.type],
      ...(this.tenant !== undefined && { tenant: this.tenant }),
      ...(context && { requestId: context.requestId }),
      ...(context?.ip !== undefined && { ip: context.ip }),
      ...(userAgent !== undefined && { userAgent: userAgent.slice(0, MAX_USER_AGENT) }),
      ...event,
    };
    for (const sink of this.#sinks) {
      try {
        sink(record);
      } catch {
        // A sink must not break the request it audits.
      }
    }
  }
}

/** An emitter with no sinks (library users and tests that do not look). */
export function silentAuditor(clock: Clock): Auditor {
  return new Auditor(clock);
}

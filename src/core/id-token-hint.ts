/**
 * Reads an `id_token_hint` (OIDC RP-Initiated Logout 1.0 §2): an ID token this server issued, naming the user and
 * the client asking to end the session. Its signature must be ours, its issuer this server, its type an ID token (an
 * access token, `typ: at+jwt`, is not a hint); expiry is not checked, because the spec has the OP accept ID tokens
 * past `exp` (RPs log users out long after the token was issued), and a hint grants nothing: it only decides whether
 * to ask the user to confirm and which client's post-logout redirect URIs apply.
 */
import { decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { KeyManager } from './keys.js';

/** Whose ID token it is and for which client. */
export interface IdTokenHint {
  sub: string;
  clientId: string;
}

export async function readIdTokenHint(
  token: string,
  deps: { keys: Pick<KeyManager, 'verificationKeys'>; config: { issuer: string } },
): Promise<IdTokenHint | undefined> {
  try {
    if (decodeProtectedHeader(token).typ !== 'JWT') return undefined;
    const { payload } = await jwtVerify(token, deps.keys.verificationKeys(), {
      issuer: deps.config.issuer,
      // Past `exp` is fine (see above): any date after it passes the check.
      currentDate: new Date(0),
      requiredClaims: ['sub', 'aud'],
    });
    const aud = payload.aud;
    // Our ID tokens have exactly one audience, the client (OIDC Core §2; core/tokens.ts idToken).
    if (typeof payload.sub !== 'string' || typeof aud !== 'string') return undefined;
    return { sub: payload.sub, clientId: aud };
  } catch (err) {
    if (err instanceof errors.JOSEError || err instanceof TypeError) return undefined;
    throw err;
  }
}

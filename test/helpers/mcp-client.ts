/**
 * An OAuthClientProvider for the official MCP SDK client that keeps its state in memory and completes the
 * authorization in a FormBrowser (real login and consent pages over HTTP), as a desktop MCP client would in a browser.
 */
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { FormBrowser } from './browser.js';

export class TestOAuthProvider implements OAuthClientProvider {
  private info: OAuthClientInformationMixed | undefined;
  private stored: OAuthTokens | undefined;
  private verifier = '';
  /** The code from the last completed browser authorization. */
  lastCode: string | undefined;
  lastAuthorizationUrl: URL | undefined;
  readonly browser = new FormBrowser();
  clientMetadataUrl?: string;

  constructor(
    private readonly opts: {
      redirectUrl: string;
      asOrigin: string;
      user: { username: string; password: string };
      clientMetadataUrl?: string;
      metadata?: Partial<OAuthClientMetadata>;
    },
  ) {
    this.clientMetadataUrl = opts.clientMetadataUrl;
  }

  get redirectUrl(): string {
    return this.opts.redirectUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'MCP SDK test client',
      redirect_uris: [this.opts.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...this.opts.metadata,
    };
  }

  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.stored;
  }
  saveTokens(tokens: OAuthTokens) {
    this.stored = tokens;
  }
  /** Simulates a client that no longer has a refresh token (forces a new authorization). */
  forgetRefreshToken() {
    if (this.stored) this.stored = { ...this.stored, refresh_token: undefined };
  }
  async redirectToAuthorization(url: URL) {
    this.lastAuthorizationUrl = url;
    const callback = await this.browser.authorize(url.href, this.opts.asOrigin, this.opts.user);
    const error = callback.searchParams.get('error');
    if (error) throw new Error(`authorization failed: ${error} ${callback.searchParams.get('error_description')}`);
    this.lastCode = callback.searchParams.get('code') ?? undefined;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

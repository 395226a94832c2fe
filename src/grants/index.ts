/** The grant registry: a new grant is one module plus one line here. Nothing else lists grant types. */
import type { GrantClientRules } from '../core/client-metadata.js';
import type { Config } from '../config/schema.js';
import { authorizationCodeGrant } from './authorization-code.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { deviceCodeGrant } from './device-code.js';
import { jwtBearerGrant } from './jwt-bearer.js';
import { refreshTokenGrant } from './refresh-token.js';
import { tokenExchangeGrant } from './token-exchange.js';
import type { GrantHandler } from './types.js';

/** Every grant module, in the order discovery advertises them and client metadata rules are checked. */
export const grantModules = [
  authorizationCodeGrant,
  refreshTokenGrant,
  clientCredentialsGrant,
  jwtBearerGrant,
  tokenExchangeGrant,
  deviceCodeGrant,
] as const;

/** A grant's declared deps, in a parameter position: a union of these infers the intersection of the slices. */
type DeclaredDeps<G> = G extends GrantHandler<infer D> ? (deps: D) => void : never;
/**
 * What the token endpoint hands the grants: every registered grant's declared slice, together. Inferred from the
 * registry, so a new grant's ports reach it with no second list.
 */
export type GrantDeps = DeclaredDeps<(typeof grantModules)[number]> extends (deps: infer D) => void ? D : never;

/** Every grant type name the code knows (enabled or not): what a config file's static clients may list. */
export const knownGrantTypes: readonly string[] = grantModules.map((g) => g.grantType);

const enabledByConfig = new WeakMap<Config, GrantHandler<GrantDeps>[]>();

/** The grants this configuration offers. */
export function enabledGrants(config: Config): GrantHandler<GrantDeps>[] {
  // Asked on every token request; a config never changes once loaded (a tenant's change is a new config object).
  let enabled = enabledByConfig.get(config);
  if (!enabled) enabledByConfig.set(config, (enabled = grantModules.filter((g) => g.enabled?.(config) ?? true)));
  return enabled;
}

/** The handler for `grantType`, if this configuration offers it. */
export function grantHandler(grantType: string, config: Config): GrantHandler<GrantDeps> | undefined {
  return enabledGrants(config).find((g) => g.grantType === grantType);
}

/** The client-metadata rules of the offered grants, for core/client-metadata (which knows no grant by name). */
export function clientRulesOf(config: Config): GrantClientRules[] {
  return enabledGrants(config);
}

/** Grant types dynamically registered clients may not list under this registration policy. */
export function refusedForRegistration(grantTypes: readonly string[], config: Config): string[] {
  return enabledGrants(config)
    .filter((g) => grantTypes.includes(g.grantType) && !(g.dynamicRegistration?.(config.registration) ?? true))
    .map((g) => g.grantType);
}

/** The grant types of a config-file client that omits `grant_types`. */
export function staticClientDefaultGrants(hasRedirectUris: boolean, config: Config): string[] {
  return enabledGrants(config)
    .filter((g) => g.staticClientDefault?.(hasRedirectUris) ?? false)
    .map((g) => g.grantType);
}

/** What the grants add to the discovery document: grant_types_supported, response_types_supported, their own fields. */
export function grantMetadata(config: Config): {
  grantTypesSupported: string[];
  responseTypesSupported: string[];
  fields: Record<string, unknown>;
} {
  const grants = enabledGrants(config);
  return {
    grantTypesSupported: grants.map((g) => g.grantType),
    responseTypesSupported: [...new Set(grants.flatMap((g) => g.responseTypes ?? []))],
    fields: Object.assign({}, ...grants.map((g) => g.metadata?.(config) ?? {})) as Record<string, unknown>,
  };
}
export type { DpopBinding, GrantHandler, TokenResponse, TokenParams } from './types.js';

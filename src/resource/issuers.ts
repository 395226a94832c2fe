/** Which issuers a resource verifier trusts: one, a fixed list, or a tenant issuer template. */

/** The `{tenant}` placeholder of an issuer template. */
export const TENANT_PLACEHOLDER = '{tenant}';

/**
 * A tenant name: lower-case letters, digits and inner hyphens, 1 to 63 characters (a DNS label). Nothing that could
 * change the meaning of the URL around it (`/`, `.`, `%`, `?`, `#`, upper case) can be part of one.
 */
export const TENANT_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** @internal A parsed issuer template such as `https://auth.example.com/{tenant}`. */
export interface IssuerTemplate {
  readonly template: string;
  /** The tenant when `issuer` is exactly the template with a valid tenant in the placeholder, else `undefined`. */
  match(issuer: string): string | undefined;
  /** The issuer of a tenant (which must match {@link TENANT_PATTERN}). */
  issuerFor(tenant: string): string;
}

/** Throws a TypeError unless `issuer` is an absolute URL without query or fragment (RFC 8414 §2). */
export function checkIssuer(issuer: string, name = 'issuer'): void {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new TypeError(`${name} must be an absolute URL: ${issuer}`);
  }
  // RFC 8414 §2: the issuer identifier has no query or fragment.
  if (url.search !== '' || issuer.includes('#')) throw new TypeError(`${name} must not have a query or fragment`);
}

/**
 * @internal Parses an issuer template: exactly one `{tenant}`, filling one whole path segment
 * (`https://auth.example.com/{tenant}`, `https://auth.example.com/t/{tenant}/oauth`). The template must be spelt as
 * the URL parser writes it (lower-case scheme and host, no default port, no `.` segments), since issuers are compared
 * exactly (RFC 8414 §3.3) and a template that parses to another spelling could never match a real `iss`.
 */
export function parseIssuerTemplate(template: string): IssuerTemplate {
  const at = template.indexOf(TENANT_PLACEHOLDER);
  if (at === -1 || template.indexOf(TENANT_PLACEHOLDER, at + 1) !== -1) {
    throw new TypeError(`issuerTemplate must contain exactly one ${TENANT_PLACEHOLDER}: ${template}`);
  }
  const prefix = template.slice(0, at);
  const suffix = template.slice(at + TENANT_PLACEHOLDER.length);
  const sample = `${prefix}tenant${suffix}`;
  checkIssuer(sample, 'issuerTemplate');
  const url = new URL(sample);
  const segment = prefix.endsWith('/') && (suffix === '' || suffix.startsWith('/'));
  if (!segment || !prefix.startsWith(`${url.origin}/`) || url.href !== sample) {
    throw new TypeError(
      `issuerTemplate must put ${TENANT_PLACEHOLDER} as a whole path segment of a normalised URL ` +
        `(e.g. https://auth.example.com/${TENANT_PLACEHOLDER}): ${template}`,
    );
  }
  const minLength = prefix.length + suffix.length;
  return {
    template,
    match(issuer) {
      if (issuer.length <= minLength || !issuer.startsWith(prefix) || !issuer.endsWith(suffix)) return undefined;
      const tenant = issuer.slice(prefix.length, issuer.length - suffix.length);
      return TENANT_PATTERN.test(tenant) ? tenant : undefined;
    },
    issuerFor(tenant) {
      if (!TENANT_PATTERN.test(tenant)) throw new TypeError(`not a valid tenant: ${tenant}`);
      return `${prefix}${tenant}${suffix}`;
    },
  };
}

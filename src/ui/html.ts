/** Minimal, safe HTML building: every interpolated value is escaped. */
import { createHash } from 'node:crypto';
import { PASSKEY_SCRIPT } from './passkey-script.js';
import { DEFAULT_STRINGS, type Strings } from './strings.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and attribute values. */
export function esc(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const STYLE = `
*{box-sizing:border-box}body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1c1f24}
main{max-width:420px;margin:8vh auto;background:#fff;border-radius:12px;padding:32px;box-shadow:0 2px 12px rgba(0,0,0,.08);overflow-wrap:anywhere}
@media (max-width:480px){main{margin:0;border-radius:0;padding:20px 16px;min-height:100vh}}
h1{font-size:1.35rem;margin:0 0 16px}label{display:block;margin:12px 0 4px;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:10px;border:1px solid #6b7280;border-radius:8px;font-size:1rem}
button{margin-top:20px;padding:10px 18px;border:0;border-radius:8px;font-size:1rem;cursor:pointer;background:#1f5eff;color:#fff;max-width:100%}
button.secondary{background:#e7e9ee;color:#1c1f24;margin-left:8px}.error{color:#b00020;margin:8px 0}.warn{background:#fff4e0;border:1px solid #f0c36d;padding:8px 12px;border-radius:8px}
a{color:#1a4fd6}:focus-visible{outline:3px solid #1c1f24;outline-offset:2px;box-shadow:0 0 0 5px #fff}
ul{padding-left:20px}.muted{color:#5b6270;font-size:.9rem}code{background:#f0f1f4;padding:1px 4px;border-radius:4px;word-break:break-all}
section{border-top:1px solid #e7e9ee;margin-top:24px;padding-top:8px}h2{font-size:1.1rem;margin:8px 0}h3{font-size:1rem;margin:8px 0 0}
.codes{font-family:ui-monospace,monospace;columns:2}.secret{font-family:ui-monospace,monospace;word-break:break-all}
form.inline{display:inline}form.inline button{margin-top:8px}.notice{background:#e8f5e9;padding:8px 12px;border-radius:8px}
.apps{list-style:none;padding:0}.apps>li{border:1px solid #e7e9ee;border-radius:8px;padding:8px 12px;margin:8px 0}
`;

/** CSP hash of the one inline stylesheet, computed once. */
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/** CSP hash of the passkey script (ui/passkey-script.ts), the only script any page may run. */
const PASSKEY_SCRIPT_HASH = `'sha256-${createHash('sha256').update(PASSKEY_SCRIPT).digest('base64')}'`;

/** A tenant's look on its pages (config `branding`; colours are validated as #rgb / #rrggbb, the logo as https). */
export interface Branding {
  name?: string;
  logoUrl?: string;
  primaryColor?: string;
  backgroundColor?: string;
}

/**
 * What `branding` changes on a page: a header with the logo and name, and a second stylesheet for the colours, allowed
 * by its own CSP hash (the pages run no inline style without one). Built once per issuer.
 */
export function pageBranding(branding: Branding | undefined): {
  html: (page: string) => string;
  headers: (headers: Record<string, string>) => Record<string, string>;
} {
  if (!branding || Object.values(branding).every((v) => v === undefined)) {
    return { html: (page) => page, headers: (headers) => headers };
  }
  const css = [
    branding.primaryColor &&
      `button:not(.secondary){background:${branding.primaryColor};color:${readableTextOn(branding.primaryColor)}}`,
    branding.backgroundColor && `body{background:${branding.backgroundColor}}`,
    '.brand{display:flex;align-items:center;gap:10px;margin-bottom:12px}.brand img{max-height:40px;max-width:160px}',
  ]
    .filter(Boolean)
    .join('');
  const hash = `'sha256-${createHash('sha256').update(css).digest('base64')}'`;
  // The logo is the name's picture: alt names it when no name is written beside it (else alt="" avoids saying it twice).
  const logo = branding.logoUrl ? `<img src="${esc(branding.logoUrl)}" alt="${branding.name ? '' : 'Logo'}">` : '';
  const header = `<header class="brand">${logo}${branding.name ? `<strong>${esc(branding.name)}</strong>` : ''}</header>`;
  const cache = new Map<Record<string, string>, Record<string, string>>();
  return {
    html: (page) => page.replace('</style>', `</style><style>${css}</style>`).replace('<main>', `<main>${header}`),
    headers(headers) {
      let branded = cache.get(headers);
      if (!branded) {
        const csp = headers['content-security-policy']!.replace(
          `style-src ${STYLE_HASH}`,
          `style-src ${STYLE_HASH} ${hash}`,
        );
        cache.set(headers, (branded = { ...headers, 'content-security-policy': csp }));
      }
      return branded;
    },
  };
}

/** Headers every HTML page gets: no framing (clickjacking), no scripts, no caching, no referrer leaks. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; style-src ${STYLE_HASH}; img-src https: data:; frame-ancestors 'none'; base-uri 'none'`,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** The headers of a page with a passkey button: PAGE_HEADERS, and that one script allowed by its hash. */
export const PASSKEY_PAGE_HEADERS: Record<string, string> = {
  ...PAGE_HEADERS,
  // No form-action: Chrome applies it to the redirects after a submission too, and a sign-in ends at the client.
  'content-security-policy': `default-src 'none'; script-src ${PASSKEY_SCRIPT_HASH}; style-src ${STYLE_HASH}; img-src https: data:; frame-ancestors 'none'; base-uri 'none'`,
};

/**
 * A passkey button and the form it posts: `mode` get (sign in) or create (register), `options` the server's
 * options for the browser (a JSON data block, which no CSP runs), `fields` the form's other inputs (HTML).
 */
export function passkeyForm(input: {
  action: string;
  mode: 'get' | 'create';
  options: unknown;
  fields: string;
  label: string;
}): string {
  // In a data block only "</" could end the element early: escape every "<".
  const json = JSON.stringify(input.options).replace(/</g, '\\u003c');
  return `<form id="passkey-form" method="post" action="${esc(input.action)}" data-passkey="${input.mode}">
${input.fields}<input type="hidden" name="credential" value="">
<button type="button" id="passkey-button">${esc(input.label)}</button>
<p id="passkey-status" class="error" role="alert"></p>
</form>
<script type="application/json" id="passkey-options">${json}</script>
<script>${PASSKEY_SCRIPT}</script>`;
}

/** WCAG 2 relative luminance of #rgb / #rrggbb. */
export function relativeLuminance(colour: string): number {
  const hex = colour.slice(1);
  const full = hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex;
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(full.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

/** WCAG 2 contrast ratio of two colours (1 to 21). */
export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/**
 * Black or white, whichever reads better on `background`: one of the two always reaches 4.5:1 (WCAG AA for text),
 * whatever the colour.
 */
export function readableTextOn(background: string): '#000000' | '#ffffff' {
  return contrastRatio(background, '#000000') >= contrastRatio(background, '#ffffff') ? '#000000' : '#ffffff';
}

/** Wraps a page body in the document shell, in the language of `t`. */
export function layout(title: string, body: string, t: Strings = DEFAULT_STRINGS): string {
  return `<!doctype html><html lang="${esc(t['page.lang'])}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

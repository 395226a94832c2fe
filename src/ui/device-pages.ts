/** The device authorization grant's pages (RFC 8628 §3.3): the user-code form and the page a device flow ends on. */
import { esc, layout } from './html.js';
import { DEFAULT_STRINGS, html, message, type Strings } from './strings.js';

/**
 * The user-code form: one field `user_code` (prefilled from verification_uri_complete), the CSRF token, and the
 * warning against codes someone else sent (device code phishing, RFC 8628 §5.4).
 */
export function deviceCodePage(input: {
  action: string;
  csrf: string;
  userCode?: string;
  error?: string;
  strings?: Strings;
}): string {
  const t = input.strings ?? DEFAULT_STRINGS;
  const error = input.error ? `<p id="form-error" class="error" role="alert">${esc(message(t, input.error))}</p>` : '';
  const describedBy = input.error ? ' aria-describedby="form-error"' : '';
  return layout(
    t['device.title'],
    `<h1>${html(t, 'device.heading')}</h1>
<p>${html(t, 'device.explain')}</p>
${error}
<form method="post" action="${esc(input.action)}">
<input type="hidden" name="csrf" value="${esc(input.csrf)}">
<label for="user_code">${html(t, 'device.code')}</label><input id="user_code" type="text" name="user_code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required autofocus maxlength="20" placeholder="XXXX-XXXX"${describedBy} value="${esc(input.userCode ?? '')}">
<button type="submit">${html(t, 'device.submit')}</button>
</form>
<p class="warn" id="device-phishing">${html(t, 'device.phishing')}</p>`,
    t,
  );
}

/** Where a device interaction ends: the device is connected, or not. */
export function deviceDonePage(result: 'approved' | 'denied' | 'failed', t: Strings = DEFAULT_STRINGS): string {
  const [title, text] =
    result === 'approved'
      ? (['device.approvedTitle', 'device.approved'] as const)
      : result === 'denied'
        ? (['device.deniedTitle', 'device.denied'] as const)
        : (['device.failedTitle', 'device.failed'] as const);
  return layout(
    t[title],
    `<h1>${html(t, title)}</h1><p id="device-result" data-result="${result}">${html(t, text)}</p>`,
    t,
  );
}

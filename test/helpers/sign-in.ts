/**
 * Driving the sign-in steps over HTTP (FormBrowser, no JavaScript): pages with several forms (a TOTP form, a
 * recovery-code form, "Sign in as someone else") are submitted by a marker the chosen form contains, and TOTP codes
 * come from core/totp.ts at the server's clock.
 */
import { expect } from 'vitest';
import type { ManualClock } from '../../src/core/clock.js';
import { totp } from '../../src/core/totp.js';
import { FormBrowser } from './browser.js';
import type { TestServer } from './server.js';

export interface Page {
  res: Response;
  url: string;
  html: string;
  /** The first off-origin redirect (the client's callback), if the step ended there. */
  callback?: string;
}

function unescape(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'");
}

/** The form of `html` that contains `marker`: its absolute action and hidden fields. */
export function formWith(
  html: string,
  pageUrl: string,
  marker: string,
): { action: string; fields: Record<string, string> } {
  const form = [...html.matchAll(/<form[\s\S]*?<\/form>/g)].map((m) => m[0]).find((f) => f.includes(marker));
  if (!form) throw new Error(`no form with ${marker} on page: ${html.slice(0, 400)}`);
  const action = /action="([^"]*)"/.exec(form)![1]!;
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    fields[m[1]!] = unescape(m[2]!);
  return { action: new URL(unescape(action), pageUrl).href, fields };
}

/** Reads a followed response as a page. */
export async function pageOf(step: { res: Response; url: string; callback?: string }): Promise<Page> {
  return { ...step, html: step.callback ? '' : await step.res.text() };
}

/** Submits the form of `page` that contains `marker`, with `extra` fields; follows same-origin redirects. */
export async function submit(
  browser: FormBrowser,
  page: Page,
  origin: string,
  marker: string,
  extra: Record<string, string> = {},
): Promise<Page> {
  const { action, fields } = formWith(page.html, page.url, marker);
  return pageOf(
    await browser.follow(action, origin, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...extra }).toString(),
    }),
  );
}

export const onLoginPage = (page: Page) => page.html.includes('name="password"');
export const onSecondFactorPage = (page: Page) => page.html.includes('<h1>Verify it is you</h1>');
export const onEnrolPage = (page: Page) => page.html.includes('<h1>Set up two-step verification</h1>');
export const onConsentPage = (page: Page) => page.html.includes('name="decision"');

/** The TOTP secret a set-up page shows (grouped by 4 for reading). */
export function totpSecretOf(html: string): string {
  const shown = /id="totp-secret">([^<]+)</.exec(html)?.[1];
  if (!shown) throw new Error(`no TOTP secret on page: ${html.slice(0, 300)}`);
  return shown.replace(/\s/g, '');
}

/** The recovery codes a page shows once. */
export function recoveryCodesOf(html: string): string[] {
  return [...html.matchAll(/<li><code>([A-Z2-7-]+)<\/code><\/li>/g)].map((m) => m[1]!);
}

/** The current TOTP code of `secret` at the server's clock. */
export const codeAt = (secret: string, clock: ManualClock) => totp(secret, clock.now());

/** A fresh time step for the next code (each step passes once per user). */
export const nextStep = (clock: ManualClock) => clock.advance(30_000);

/** Signs `user` in on /account with the password; returns the page it lands on. */
export async function accountSignIn(
  browser: FormBrowser,
  server: TestServer,
  user: { username: string; password: string },
): Promise<Page> {
  const login = await pageOf(await browser.follow(`${server.issuer}/account`, server.origin));
  expect(onLoginPage(login), login.html.slice(0, 300)).toBe(true);
  return submit(browser, login, server.origin, 'name="password"', user);
}

/**
 * Sets up TOTP for `user` through the account page (password sign-in, the shown secret, a confirming code) and
 * returns the secret and the recovery codes shown once. Advances the clock past the confirming code's step.
 */
export async function enrolTotpOnAccount(
  server: TestServer,
  clock: ManualClock,
  user: { username: string; password: string },
): Promise<{ secret: string; recoveryCodes: string[]; browser: FormBrowser }> {
  const browser = new FormBrowser();
  const account = await accountSignIn(browser, server, user);
  expect(account.html).toContain('id="account-username"');
  const setup = await submit(browser, account, server.origin, 'Set up an authenticator app');
  const secret = totpSecretOf(setup.html);
  const codes = await submit(browser, setup, server.origin, 'name="code"', { code: codeAt(secret, clock) });
  const recoveryCodes = recoveryCodesOf(codes.html);
  expect(recoveryCodes).toHaveLength(10);
  nextStep(clock);
  return { secret, recoveryCodes, browser };
}

/** Small raw-HTTP helpers for tests that must see exact status codes and error bodies. */
import { createHash, randomBytes } from 'node:crypto';

export const verifier = () => randomBytes(32).toString('base64url');
export const challenge = (v: string) => createHash('sha256').update(v).digest('base64url');

/** POSTs a form; returns status, JSON body and headers. */
export async function postForm(url: string, params: Record<string, string | string[]>, headers: Record<string, string> = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const value of Array.isArray(v) ? v : [v]) body.append(k, value);
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json, headers: res.headers };
}

/** POSTs JSON; returns status, JSON body and headers. */
export async function postJson(url: string, payload: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(payload) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, any>, headers: res.headers };
}

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

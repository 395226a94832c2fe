/**
 * A minimal no-JavaScript browser: a cookie jar, manual redirects, and form submission by field name. It drives
 * the real login and consent pages over HTTP exactly as a user agent without scripts would.
 */
export class FormBrowser {
  private jar = new Map<string, string>();

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }

  /** One request, no redirect following. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.jar.size) headers.set('cookie', this.cookieHeader());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }

  /** Follows redirects within `origin`; returns the last response and the first off-origin Location (the client callback). */
  async follow(
    url: string,
    origin: string,
    init: RequestInit = {},
  ): Promise<{ res: Response; url: string; callback?: string }> {
    let res = await this.request(url, init);
    let current = url;
    for (let i = 0; i < 10 && res.status >= 300 && res.status < 400; i++) {
      const location = new URL(res.headers.get('location')!, current).href;
      if (!location.startsWith(origin + '/')) return { res, url: current, callback: location };
      current = location;
      res = await this.request(current);
    }
    return { res, url: current };
  }

  /** Reads a page's form: action and hidden inputs. */
  static form(html: string, pageUrl: string): { action: string; fields: Record<string, string> } {
    const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
    if (!action) throw new Error(`no form on page: ${html.slice(0, 200)}`);
    const fields: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
      fields[m[1]!] = unescape(m[2]!);
    return { action: new URL(unescape(action), pageUrl).href, fields };
  }

  /** Submits a form on `html` with extra fields; returns the followed result. */
  async submit(html: string, pageUrl: string, origin: string, extra: Record<string, string>) {
    const { action, fields } = FormBrowser.form(html, pageUrl);
    return this.follow(action, origin, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...extra }).toString(),
    });
  }

  /**
   * Runs the whole interactive part: GET the authorization URL, sign in if asked, approve or deny consent if asked.
   * Returns the callback URL the server redirected to.
   */
  async authorize(
    authorizationUrl: string,
    origin: string,
    user?: { username: string; password: string },
    decision: 'approve' | 'deny' = 'approve',
  ): Promise<URL> {
    let step = await this.follow(authorizationUrl, origin);
    for (let i = 0; i < 4 && !step.callback; i++) {
      const html = await step.res.text();
      if (html.includes('name="password"')) {
        if (!user) throw new Error('login page shown but no user given');
        step = await this.submit(html, step.url, origin, { username: user.username, password: user.password });
      } else if (html.includes('name="decision"')) {
        step = await this.submit(html, step.url, origin, { decision });
      } else {
        throw new Error(`unexpected page (${step.res.status}): ${html.slice(0, 300)}`);
      }
    }
    if (!step.callback) throw new Error('authorization did not redirect back to the client');
    return new URL(step.callback);
  }
}

function unescape(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'");
}

/**
 * A dashboard user driven over HTTP with `app.request` (no browser): a cookie jar, the CSRF token
 * of the last page, and the sign-up (setup link) and sign-in forms.
 */
import type { Deps } from '../../src/deps.ts';
import { createDashboardAuth } from '../../src/dashboard/auth.ts';

interface App {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

export class DashboardClient {
  cookies = new Map<string, string>();
  csrf = '';
  constructor(readonly app: App) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private remember(res: Response): void {
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (value === '' || /max-age=0/i.test(sc)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async get(path: string): Promise<{ res: Response; text: string }> {
    const res = await this.app.request(path, { headers: { cookie: this.cookieHeader() } });
    this.remember(res);
    const text = await res.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(text);
    if (m) this.csrf = m[1]!;
    return { res, text };
  }

  /** POSTs a form; `_csrf` is added unless given. `raw` sends the body as is (already encoded). */
  async post(path: string, form: Record<string, string | string[]> | { raw: string }): Promise<{ res: Response; text: string }> {
    let body: string;
    if ('raw' in form && typeof form.raw === 'string') body = form.raw;
    else {
      const p = new URLSearchParams();
      const f = form as Record<string, string | string[]>;
      if (!('_csrf' in f)) p.append('_csrf', this.csrf);
      for (const [k, v] of Object.entries(f)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
      body = p.toString();
    }
    const res = await this.app.request(path, {
      method: 'POST',
      headers: { cookie: this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    this.remember(res);
    return { res, text: await res.text() };
  }
}

export const DASHBOARD_PASSWORD = 'Kassa-test-password-7319!';

/** Creates an owner for the merchant through a setup link, signs in, returns the signed-in client and the link's token. */
export async function signedInOwner(app: App, deps: Deps, merchantId: string, email: string, role = 'owner') {
  const auth = createDashboardAuth({ sql: deps.sql, config: deps.config, logger: deps.logger });
  const { setupUrl } = await auth.createUser(merchantId, { email, role, createdBy: 'test' });
  const setupPath = new URL(setupUrl).pathname;
  const token = setupPath.split('/').pop()!;
  const client = new DashboardClient(app);
  await client.get(setupPath);
  const setup = await client.post(setupPath, { password: DASHBOARD_PASSWORD, confirm: DASHBOARD_PASSWORD });
  if (setup.res.status !== 303) throw new Error(`setup failed: ${setup.res.status} ${setup.text.slice(0, 300)}`);
  await client.get('/dashboard/login');
  const login = await client.post('/dashboard/login', { email, password: DASHBOARD_PASSWORD });
  if (login.res.status !== 303) throw new Error(`login failed: ${login.res.status} ${login.text.slice(0, 300)}`);
  await client.get('/dashboard');
  return { client, token, setupPath };
}

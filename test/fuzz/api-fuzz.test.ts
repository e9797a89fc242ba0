/**
 * Issue 15 finding 4: hostile strings never give a 5xx and a refused request writes nothing.
 *
 * Walks /openapi.json and, for every operation (plus the public routes and the dashboard forms),
 * sends requests that are valid except for generated hostile values (fast-check): NUL bytes,
 * unpaired surrogates, arbitrary UTF-16, formula-looking text, out-of-range dates, huge numbers,
 * in path parameters, query values, JSON fields and keys, and form fields. Every answer must be
 * below 500, and after every 4xx a fingerprint of the merchant-facing tables must be unchanged.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { DashboardClient, signedInOwner } from '../api/dashboard-session.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let dash: DashboardClient;
let invoiceId: string;
let doc: OpenApiDoc;

interface Schema {
  $ref?: string; type?: string | string[]; enum?: unknown[]; example?: unknown; properties?: Record<string, Schema>;
  required?: string[]; items?: Schema; additionalProperties?: Schema | boolean; anyOf?: Schema[]; oneOf?: Schema[]; minimum?: number; default?: unknown;
}
interface Operation { parameters?: { in: string; name: string; schema?: Schema }[]; requestBody?: { content: Record<string, { schema: Schema }> } }
interface OpenApiDoc { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema> } }

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps);
  const { refillAddressPools } = await import('../../src/chains/bitcoin/address-pool.ts');
  await refillAddressPools(ctx.deps.sql, { minFree: 50, batch: 50 });
  const inv = await app.request('/v1/invoices', req(shop.secret, 'POST', { amount: '10.00', currency: 'USD', order_id: 'FUZZ-1' }));
  expect(inv.status).toBe(201);
  invoiceId = (await inv.json()).id;
  dash = (await signedInOwner(app, ctx.deps, shop.merchant.id, 'fuzz-owner@example.com')).client;
  doc = (await (await app.request('/openapi.json')).json()) as OpenApiDoc;
}, 60_000);
afterAll(async () => ctx?.close());

/** What a refused request must not change: row counts and the writable columns of the merchant's objects. */
async function fingerprint(): Promise<string> {
  const [row] = await ctx.deps.sql<{ f: string }[]>`
    select concat_ws('|',
      (select count(*) from merchants), (select md5(coalesce(string_agg(concat_ws(',', id, name, default_expiry_seconds, monitoring_window_seconds, payment_tolerance_bps, default_speed_policy), ';' order by id), '')) from merchants),
      (select md5(coalesce(string_agg(concat_ws(',', id, name, scopes::text, revoked_at), ';' order by id), '')) from api_keys),
      (select md5(coalesce(string_agg(concat_ws(',', id, status, exception, mark_reason, cancelled_at, order_id, description, metadata::text), ';' order by id), '')) from invoices),
      (select count(*) from invoice_payment_methods), (select count(*) from deposit_addresses), (select count(*) from payments),
      (select count(*) from ledger_entries), (select count(*) from events), (select count(*) from webhook_deliveries), (select count(*) from emails),
      (select md5(coalesce(string_agg(w::text, ';' order by w.id), '')) from webhook_endpoints w),
      (select md5(coalesce(string_agg(concat_ws(',', id, email, role), ';' order by id), '')) from dashboard_users),
      (select count(*) from dashboard_setup_tokens), (select count(*) from bitcoin_key_sources), (select md5(coalesce(string_agg(e::text, ';'), '')) from merchant_evm_settings e)
    ) as f`;
  return row!.f;
}

/** Strings that broke or could break something: the generator mixes them with arbitrary UTF-16. */
const hostile = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\udc00\ud800', 'inv_\u0000') },
  { weight: 2, arbitrary: fc.constantFrom('-2+3+cmd|\' /C calc\'!A0', '=1+1', '9999-12-31', '0000-01-01T00:00:00Z', '275760-09-13', '-1', '1e400', '9'.repeat(80), '%00', '../../etc/passwd', "'; drop table invoices; --", '<script>alert(1)</script>', '', ' ', '\r\n', '\u202e', 'x'.repeat(5000)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
);
/** A JSON value put where a field is expected: mostly hostile strings, sometimes wrong types. */
const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: hostile },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, -1, 1e308, 2 ** 53 + 1, [], {}, ['\u0000'], { '\u0000': 'x' }, { '\ud800': '\ud800' }) },
);

const resolve = (s: Schema | undefined): Schema => {
  let x = s ?? {};
  while (x.$ref) x = doc.components.schemas[x.$ref.split('/').pop()!] ?? {};
  return x;
};

/** A plausible valid value for a schema (examples and enums first), to mutate one field of. */
function sample(s0: Schema | undefined, depth = 0): unknown {
  const s = resolve(s0);
  if (s.example !== undefined) return s.example;
  if (s.enum) return s.enum[0];
  if (s.default !== undefined) return s.default;
  const alt = s.anyOf ?? s.oneOf;
  if (alt) return sample(alt[0], depth + 1);
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  if (type === 'object' || s.properties) {
    const out: Record<string, unknown> = {};
    // Only the required fields (optional ones with placeholder values would be refused first);
    // the mutation below sets any field, required or not.
    if (depth < 4) for (const [k, v] of Object.entries(s.properties ?? {})) if (s.required?.includes(k)) out[k] = sample(v, depth + 1);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') out.k = sample(s.additionalProperties, depth + 1);
    return out;
  }
  if (type === 'array') return [sample(s.items, depth + 1)];
  if (type === 'integer' || type === 'number') return s.minimum ?? 1;
  if (type === 'boolean') return true;
  return 'x';
}

type Mutation = { where: 'path' | 'query' | 'body' | 'key'; pick: number; value: unknown; keyValue: string };
const mutation = fc.record({
  where: fc.constantFrom<Mutation['where']>('path', 'query', 'body', 'body', 'key'),
  pick: fc.nat(),
  value: hostileJson,
  keyValue: hostile,
});

async function check(label: string, send: () => Promise<{ res: Response; text?: string }>): Promise<void> {
  const before = await fingerprint();
  const { res, text: read } = await send();
  // A live stream (SSE) that was accepted never ends: its status is the answer; close it.
  const streaming = res.status < 400 && (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
  if (streaming) await res.body?.cancel();
  const text = streaming ? '' : read ?? (await res.text());
  if (res.status >= 500) throw new Error(`${label} → ${res.status}: ${text.slice(0, 300)}`);
  if (res.status >= 400) {
    const after = await fingerprint();
    if (after !== before) throw new Error(`${label} → ${res.status} but data changed: ${text.slice(0, 300)}`);
  }
}

/** Percent-encodes any UTF-16 string; an unpaired surrogate becomes its 3 (WTF-8) bytes, as a client could send. */
function encodeAny(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) out += [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    else out += encodeURIComponent(ch);
  }
  return out;
}

const realId = (path: string) => (/invoices/.test(path) ? invoiceId : 'x');
const describeValue = (v: unknown) => JSON.stringify(v)?.slice(0, 80);

describe('fuzz: hostile input through every operation', () => {
  it('no API operation answers 5xx, and a refused request writes nothing', async () => {
    const operations: { method: string; path: string; op: Operation }[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (path === '/health') continue; // 503 there means "degraded" (no chain watcher runs in this test)
      for (const [method, op] of Object.entries(ops)) operations.push({ method, path, op });
    }
    operations.push({ method: 'get', path: '/v1/public/invoices/{id}', op: { parameters: [{ in: 'path', name: 'id' }] } });
    operations.push({ method: 'get', path: '/pay/{id}', op: { parameters: [{ in: 'path', name: 'id' }] } });
    expect(operations.length).toBeGreaterThan(20);

    for (const { method, path, op } of operations) {
      const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      const queryParams = (op.parameters ?? []).filter((p) => p.in === 'query');
      const bodySchema = op.requestBody?.content['application/json']?.schema;
      await fc.assert(
        fc.asyncProperty(mutation, async (m) => {
          const params: Record<string, string> = Object.fromEntries(pathParams.map((n) => [n, realId(path)]));
          const query = new URLSearchParams();
          for (const q of queryParams) {
            const v = sample(q.schema);
            if (q.name === 'from' || q.name === 'to') query.set(q.name, q.name === 'from' ? '2026-01-01' : '2026-02-01');
            else if (typeof v === 'string' || typeof v === 'number') query.set(q.name, String(v));
          }
          let body = bodySchema ? (sample(bodySchema) as Record<string, unknown>) : undefined;
          const str = typeof m.value === 'string' ? m.value : JSON.stringify(m.value) ?? '';
          if (m.where === 'path' && pathParams.length) params[pathParams[m.pick % pathParams.length]!] = str;
          else if (m.where === 'query' && queryParams.length) query.set(queryParams[m.pick % queryParams.length]!.name, str);
          else if (m.where === 'query') query.set(m.keyValue, str);
          else if (body && typeof body === 'object') {
            const props = resolve(bodySchema).properties ?? {};
            const keys = Object.keys(props);
            // Objects with free-form keys (metadata): a hostile key inside, else a hostile top-level key.
            const mapField = keys.find((k) => resolve(props[k]).additionalProperties);
            if (m.where === 'key' && mapField) body[mapField] = { [m.keyValue]: 'v' };
            else if (m.where === 'key' || keys.length === 0) body = { ...body, [m.keyValue]: 'v' };
            else {
              const k = keys[m.pick % keys.length]!;
              body[k] = mapField === k ? { k: m.value } : m.value;
            }
          }
          const url = path.replace(/\{(\w+)\}/g, (_all, n: string) => encodeAny(params[n]!)) + (query.size ? `?${query}` : '');
          await check(`${method.toUpperCase()} ${url} ${body ? describeValue(body) : ''}`, () =>
            Promise.resolve(app.request(url, req(shop.secret, method.toUpperCase(), body))).then((res) => ({ res })));
        }),
        { numRuns: 15, seed: 1515 },
      );
    }
  }, 120_000);

  it('the dashboard forms and filters answer 4xx (never 5xx) to hostile values and write nothing', async () => {
    const forms: { path: string; fields: Record<string, string> }[] = [
      { path: `/dashboard/invoices/${invoiceId}/mark`, fields: { status: 'invalid', reason: 'fuzz' } },
      { path: `/dashboard/invoices/${invoiceId}/refunds`, fields: { amount_kind: 'decimal', amount: '1.00', amount_currency: 'USD', rate_basis: 'fixed', rate: '60000', fee: '0', reason: 'fuzz', method: 'BTC' } },
      { path: '/dashboard/settings', fields: { expiry_minutes: '15', tolerance_percent: '0.5', speed_policy: 'medium' } },
      { path: '/dashboard/settings/keys', fields: { name: 'fuzz key', scopes: 'invoices:read' } },
      { path: '/dashboard/settings/webhooks', fields: { url: 'https://shop.example/hook', description: 'fuzz' } },
      { path: '/dashboard/settings/users', fields: { email: 'new-user@example.com', role: 'viewer' } },
      { path: '/dashboard/account/2fa/confirm', fields: { code: '123456' } },
    ];
    const filters = ['/dashboard/invoices', '/dashboard/reconciliation', '/dashboard/reconciliation.csv', '/dashboard/payments', '/dashboard/audit', '/dashboard'];
    const filterParams = ['q', 'from', 'to', 'status', 'method', 'after', 'before', 'days', 'done'];
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.nat(), hostile, async (i, j, value) => {
        const form = forms[i % forms.length]!;
        const field = Object.keys(form.fields)[j % Object.keys(form.fields).length]!;
        await check(`POST ${form.path} ${field}=${describeValue(value)}`, async () => {
          await dash.get('/dashboard');
          return dash.post(form.path, { ...form.fields, [field]: value });
        });
        const page = filters[i % filters.length]!;
        const q = `${filterParams[j % filterParams.length]!}=${encodeAny(value)}`;
        await check(`GET ${page}?${q}`, () => dash.get(`${page}?${q}`));
        await check(`GET /dashboard/invoices/${describeValue(value)}`, () => dash.get(`/dashboard/invoices/${encodeAny(value)}`));
      }),
      { numRuns: 40, seed: 1516 },
    );
  }, 120_000);

  it('named cases: 400 naming the field (API) or the form again with a message (dashboard)', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/v1/invoices', { amount: '1.00', currency: 'USD', order_id: 'a\u0000b' }, 'order_id'],
      ['POST', '/v1/invoices', { amount: '1.00', currency: 'USD', description: 'x\ud800' }, 'description'],
      ['POST', '/v1/invoices', { amount: '1.00', currency: 'USD', metadata: { 'k\u0000': 'v' } }, 'metadata'],
      ['POST', '/v1/invoices', { amount: '1.00', currency: 'USD', metadata: { k: '\udc00' } }, 'metadata.k'],
      ['PATCH', '/v1/merchant', { name: 'Shop\u0000' }, 'name'],
      ['POST', '/v1/api_keys', { name: '\ud800', scopes: ['invoices:read'] }, 'name'],
      ['POST', '/v1/webhook_endpoints', { url: 'https://shop.example/h', description: 'a\u0000' }, 'description'],
      ['POST', `/v1/invoices/${'INV'}/mark`, { status: 'invalid', reason: 'r\u0000' }, 'reason'],
      ['GET', '/v1/invoices?order_id=%00', undefined, 'order_id'],
      ['GET', '/v1/invoices/%00', undefined, 'id'],
      ['GET', '/v1/invoices/%ED%A0%80', undefined, 'id'],
      ['GET', '/v1/invoices?created%5Bgte%5D=0000-01-01T00:00:00Z', undefined, 'created[gte]'],
      ['GET', '/v1/reports/reconciliation?from=0000-01-01&to=0000-02-01', undefined, 'from'],
    ];
    for (const [method, path, body, param] of cases) {
      const before = await fingerprint();
      const res = await app.request(path.replace('INV', invoiceId), req(shop.secret, method, body));
      const json = await res.json();
      expect({ path, status: res.status, param: json.error?.param, message: json.error?.message }).toMatchObject({ path, status: 400, param });
      expect(await fingerprint()).toBe(before);
    }

    const anon = new DashboardClient(app);
    await anon.get('/dashboard/login');
    const login = await anon.post('/dashboard/login', { email: 'a\u0000b', password: 'whatever-password' });
    expect(login.res.status).toBe(400);
    expect(login.text).toContain('name="password"'); // the sign-in form again
    expect(login.text).toContain('The field &quot;email&quot; contains a character that is not allowed');
    const raw = await anon.post('/dashboard/login', { raw: `_csrf=${anon.csrf}&email=a%00b&password=x` });
    expect(raw.res.status).toBe(400);

    const far = await dash.get('/dashboard/invoices?to=9999-12-31');
    expect(far.res.status).toBe(400);
    expect(far.text).toContain('Enter dates as YYYY-MM-DD between 1970-01-01 and 2999-12-31.');
  });
});

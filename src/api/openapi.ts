/**
 * GET /openapi.json: the OpenAPI 3.1 document generated from the route definitions, finished here:
 * - each operation's scopes, read from its `requireScope(...)` middleware (`x-kassa-scopes` and a
 *   sentence in the description), and `security: []` on the routes that need no API key (everything
 *   outside /v1, and /v1/public/*, exactly the paths the API key middleware in app.ts skips);
 * - the public checkout endpoints (/v1/public/*), which are plain Hono routes, documented by hand;
 * - required fields the schema cannot express (a field validated by the service, not by Zod);
 * - an example request body and response per operation, and `x-codeSamples` (curl, Node with
 *   @kassa/client, Python standard library) rendered by /docs.
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../deps.ts';
import type { AppEnv } from './env.ts';
import { ErrorSchema } from './schemas.ts';
import { INVOICE_EXCEPTIONS, INVOICE_STATUSES } from '../invoices/status.ts';

type Json = Record<string, unknown>;
type Schema = Json & { $ref?: string; type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema };

/** Fields the API requires although their Zod schema cannot say so (validated by the service). */
const REQUIRED_FIELDS: Record<string, string[]> = {
  InvoiceCreate: ['amount'],
};

/** A full, valid test descriptor (BIP-32 test vector 1 seed, BIP-84 path m/84'/1'/0'). Test networks only. */
export const TEST_DESCRIPTOR =
  'wpkh([3442193e/84h/1h/0h]tpubDDNRbZGvdA33cgpY5uy2mmphT7sK4uciRjcQScSd64S5KRyZDxHcPuzs24or84Hywugb2JbEEt2jWH8fduiN9cmZzkSj8sSSx6txXkhXyZs/0/*)#0s0dqh6s';

/** Request bodies worth more than the generated ones ("METHOD path"). */
const REQUEST_EXAMPLES: Record<string, unknown> = {
  'post /v1/invoices': {
    amount: '25.00', currency: 'USD', order_id: 'order-1042', description: 'Two tickets',
    metadata: { customer_id: 'c_981' }, redirect_url: 'https://shop.example/thanks',
  },
  'patch /v1/merchant': { default_expiry_seconds: 1800, payment_tolerance_percent: '0.50', default_speed_policy: 'medium' },
  'post /v1/api_keys': { name: 'shop backend', scopes: ['invoices:read', 'invoices:write'] },
  'put /v1/merchant/payment_methods/bitcoin': { descriptor: TEST_DESCRIPTOR },
  'put /v1/merchant/payment_methods/evm/{chain}': { treasury: '0x52908400098527886E0F7030069857D2E4169EE7', assets: ['ETH', 'USDC'] },
  'post /v1/invoices/{id}/mark': { status: 'settled', reason: 'Paid by bank transfer, see ticket 311' },
  'post /v1/webhook_endpoints': { url: 'https://shop.example/kassa/webhooks', events: ['invoice.settled', 'invoice.expired'], description: 'order fulfilment' },
  'post /v1/webhook_endpoints/{id}': { enabled: true, events: ['*'] },
};

const STREAM_EXAMPLE =
  'retry: 3000\n\nid: evt_5Rk…\nevent: invoice.settled\ndata: {"id":"evt_5Rk…","type":"invoice.settled","created_at":"2026-01-15T10:04:12.000Z",…}\n\n: heartbeat\n\n';

/** The public checkout view of an invoice (what /pay/:id shows). */
const PublicInvoiceSchema = z
  .object({
    id: z.string().openapi({ example: 'inv_3kT…' }),
    object: z.literal('public_invoice'),
    status: z.enum(INVOICE_STATUSES),
    exception: z.enum(INVOICE_EXCEPTIONS).nullable(),
    merchant_name: z.string().openapi({ example: 'Ticket shop' }),
    description: z.string().nullable(),
    amount: z.string().openapi({ example: '25.00' }),
    currency: z.string().openapi({ example: 'USD' }),
    amount_paid: z.string().openapi({ example: '0.00' }),
    amount_due: z.string().openapi({ example: '25.00' }),
    expires_at: z.string(),
    server_time: z.string().openapi({ description: 'The server clock when this was read (corrects client clock skew).' }),
    redirect_url: z.string().nullable(),
    locale: z.string().openapi({ example: 'en' }),
    payment_methods: z.array(z.object({
      method: z.string().openapi({ example: 'BTC' }),
      chain: z.string().openapi({ example: 'bitcoin' }),
      network: z.string().openapi({ example: 'regtest' }),
      network_name: z.string().openapi({ example: 'Bitcoin regtest', description: 'The network\'s name to show a payer: "Base", "Arbitrum One", "Bitcoin" (docs/configuration.md, chain presets).' }),
      chain_id: z.number().int().optional(),
      asset: z.string().openapi({ example: 'BTC' }),
      token: z.string().optional(),
      address: z.string().openapi({ example: 'bcrt1q…' }),
      amount: z.string().openapi({ example: '0.00041667' }),
      amount_due: z.string().openapi({ example: '0.00041667' }),
      amount_paid: z.string().openapi({ example: '0.00000000' }),
      confirmations_required: z.number().int().openapi({ example: 1 }),
      payment_uri: z.string().openapi({ example: 'bitcoin:bcrt1q…?amount=0.00041667&label=Ticket%20shop' }),
    })),
    payments: z.array(z.object({
      method: z.string().openapi({ example: 'BTC' }),
      asset: z.string().openapi({ example: 'BTC' }),
      amount: z.string().openapi({ example: '0.00041667' }),
      status: z.enum(['pending', 'confirmed']),
      confirmations: z.number().int().openapi({ example: 0 }),
    })),
  })
  .openapi('PublicInvoice');

const publicIdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'inv_3kT…' }) });
const publicErrors = {
  404: { description: 'No such invoice.', content: { 'application/json': { schema: ErrorSchema } } },
  429: { description: 'Too many requests from this client address; see Retry-After.', content: { 'application/json': { schema: ErrorSchema } } },
};

/** Documents the /v1/public/* routes (registered as plain Hono routes in routes/public.ts). */
function registerPublicDocs(app: OpenAPIHono<AppEnv>): void {
  const tags = ['Public (checkout)'];
  app.openAPIRegistry.registerPath({
    method: 'get', path: '/v1/public/invoices/{id}', tags,
    summary: 'The customer-facing view of an invoice (used by the checkout page)',
    description: 'Never contains metadata, order ids, buyer e-mail, rates or staff marks. Rate limited per client address.',
    request: { params: publicIdParam },
    responses: { 200: { description: 'OK', content: { 'application/json': { schema: PublicInvoiceSchema } } }, ...publicErrors },
  });
  app.openAPIRegistry.registerPath({
    method: 'get', path: '/v1/public/invoices/{id}/stream', tags,
    summary: 'Server-Sent Events: the public invoice on connect and after every change',
    description: 'Each `invoice` event carries the PublicInvoice JSON; a `: heartbeat` comment every 15 s. A reverse proxy must not buffer it.',
    request: { params: publicIdParam },
    responses: {
      200: {
        description: 'An event stream',
        content: { 'text/event-stream': { schema: { type: 'string' }, example: 'retry: 3000\n\nevent: invoice\ndata: {"id":"inv_3kT…","object":"public_invoice","status":"new",…}\n\n' } },
      },
      ...publicErrors,
    },
  });
}

/** Scopes a route requires: read from the `kassaScopes` its requireScope middleware carries. */
function scopesOf(route: { middleware?: unknown }): string[] {
  const list = Array.isArray(route.middleware) ? route.middleware : route.middleware ? [route.middleware] : [];
  return list.flatMap((m) => ((m as { kassaScopes?: readonly string[] }).kassaScopes ?? []) as string[]);
}

const routeScopes = new WeakMap<object, Map<string, string[]>>();

/**
 * Call right after creating the app, before any route: records each `app.openapi(route, …)`'s
 * scopes (the registry drops a route's middleware, so they are read on the way in).
 */
export function trackRouteScopes(app: OpenAPIHono<AppEnv>): void {
  const scopes = new Map<string, string[]>();
  routeScopes.set(app, scopes);
  const original = app.openapi.bind(app);
  app.openapi = ((route: { method: string; path: string; middleware?: unknown }, ...rest: unknown[]) => {
    scopes.set(`${route.method} ${route.path}`, scopesOf(route));
    return (original as (...a: unknown[]) => unknown)(route, ...rest);
  }) as typeof app.openapi;
}

/** True when the API key middleware in app.ts does not run for this path. */
export function isUnauthenticatedPath(path: string): boolean {
  return !path.startsWith('/v1/') || path.startsWith('/v1/public/');
}

/** Builds an example value from a JSON schema: declared examples first, then plausible values. */
export function exampleFromSchema(schema: Schema | undefined, components: Record<string, Schema>, key = '', depth = 0): unknown {
  if (!schema || depth > 24) return null;
  if (schema.$ref) return exampleFromSchema(components[schema.$ref.split('/').pop()!], components, key, depth + 1);
  if ('example' in schema) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...(schema.allOf as Schema[]).map((part) => exampleFromSchema(part, components, key, depth + 1) as Json));
  }
  for (const k of ['anyOf', 'oneOf'] as const) {
    const alts = schema[k] as Schema[] | undefined;
    if (alts?.length) return exampleFromSchema(alts.find((a) => a.type !== 'null') ?? alts[0], components, key, depth + 1);
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const type = types.find((t) => t !== 'null') ?? types[0];
  if (type === 'object' || schema.properties) {
    const out: Json = {};
    for (const [k, v] of Object.entries(schema.properties ?? {})) {
      const value = exampleFromSchema(v, components, k, depth + 1);
      const nullable = Array.isArray(v.type) ? v.type.includes('null') : (v.anyOf as Schema[] | undefined)?.some((a) => a.type === 'null');
      out[k] = nullable && !('example' in v) && !/_at$/.test(k) ? null : value;
    }
    const extra = schema.additionalProperties as Schema | boolean | undefined;
    if (!schema.properties && extra && typeof extra === 'object') {
      return { [key === 'checks' ? 'postgres' : 'order_ref']: exampleFromSchema(extra, components, 'value', depth + 1) };
    }
    return out;
  }
  if (type === 'array') return [exampleFromSchema(schema.items, components, key, depth + 1)];
  if (type === 'integer' || type === 'number') return typeof schema.minimum === 'number' ? schema.minimum : 0;
  if (type === 'boolean') return true;
  if (type === 'string') {
    if (/_at$|_until$|^server_time$/.test(key)) return '2026-01-15T10:00:00.000Z';
    if (schema.format === 'email') return 'buyer@example.com';
    if (schema.format === 'uri' || /url$/.test(key)) return 'https://shop.example/thanks';
    if (/amount|^rate$|^value$|percent/.test(key)) return '0.00';
    if (key === 'txid') return 'f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16';
    if (key === 'endpoint_id') return 'we_7Hq…';
    if (key === 'invoice_id') return 'inv_3kT…';
    return key || 'string';
  }
  return null;
}

function pathWithExamples(path: string, op: Json): string {
  const params = (op.parameters as Json[] | undefined) ?? [];
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const p = params.find((x) => x.in === 'path' && x.name === name) as Json | undefined;
    const ex = (p?.example ?? (p?.schema as Json | undefined)?.example) as string | undefined;
    return ex ?? (name === 'chain' ? 'ethereum' : `${name}_…`);
  });
}

/** curl, Node (@kassa/client) and Python (standard library) for one operation. */
function codeSamples(method: string, path: string, op: Json, body: unknown, stream: boolean): { lang: string; label: string; source: string }[] {
  const url = pathWithExamples(path, op);
  const open = isUnauthenticatedPath(path);
  const M = method.toUpperCase();
  const idem = M === 'POST';
  const json = body === undefined ? undefined : JSON.stringify(body);
  const curl = [
    `curl${stream ? ' -N' : ''}${M === 'GET' ? '' : ` -X ${M}`} "$KASSA_URL${url}"`,
    ...(open ? [] : ['  -H "Authorization: Bearer $KASSA_API_KEY"']),
    ...(idem ? ['  -H "Idempotency-Key: $(uuidgen)"'] : []),
    ...(json ? ['  -H "Content-Type: application/json"', `  -d '${json}'`] : []),
  ].join(' \\\n');

  const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const realUrl = url;
  const pathValues = Object.fromEntries(pathParams.map((n) => {
    const seg = realUrl.split('/')[path.split('/').indexOf(`{${n}}`)];
    return [n, seg];
  }));
  const opts: string[] = [];
  if (pathParams.length) opts.push(`params: { path: ${JSON.stringify(pathValues).replace(/"(\w+)":/g, '$1: ')} }`);
  if (json) opts.push(`body: ${JSON.stringify(body, null, 2).replace(/\n/g, '\n  ')}`);
  const optText = opts.length ? `, { ${opts.join(', ')} }` : '';
  const isList = M === 'GET' && /List/.test(String(op.summary ?? '')) && !stream;
  const head = `import { KassaClient } from '@kassa/client';\n\nconst kassa = new KassaClient({ baseUrl: process.env.KASSA_URL, apiKey: process.env.KASSA_API_KEY });\n`;
  const node = stream && path !== '/v1/events/stream'
    ? `// In a browser: new EventSource(url). In Node:\nconst res = await fetch(\`\${process.env.KASSA_URL}${url}\`);\nconst decoder = new TextDecoder();\nfor await (const chunk of res.body) process.stdout.write(decoder.decode(chunk, { stream: true }));`
    : stream
    ? `${head}// Follows the stream; resumes after the last event id when the connection drops.\nfor await (const event of kassa.events.stream()) {\n  console.log(event.id, event.type);\n}`
    : isList
      ? `${head}// Iterates over every page.\nfor await (const item of kassa.list('${path}'${optText})) {\n  console.log(item.id);\n}`
      : `${head}const result = await kassa.${method}('${path}'${optText});\nconsole.log(result);`;

  const headers = [
    ...(open ? [] : ['"Authorization": "Bearer " + os.environ["KASSA_API_KEY"]']),
    ...(json ? ['"Content-Type": "application/json"'] : []),
    ...(idem ? ['"Idempotency-Key": str(uuid.uuid4())'] : []),
  ];
  const py = [
    `import json, os, urllib.request${idem ? ', uuid' : ''}`,
    '',
    `req = urllib.request.Request(`,
    `    os.environ["KASSA_URL"] + "${url}",`,
    `    method="${M}",`,
    ...(json ? [`    data=json.dumps(${JSON.stringify(body)}).encode(),`] : []),
    `    headers={${headers.join(', ')}},`,
    ')',
    ...(stream
      ? ['with urllib.request.urlopen(req) as resp:', '    for line in resp:  # "id: …", "event: …", "data: {…}", blank line', '        print(line.decode().rstrip())']
      : ['with urllib.request.urlopen(req) as resp:', '    print(json.load(resp))']),
  ].join('\n');
  return [
    { lang: 'Shell', label: 'curl', source: curl },
    { lang: 'JavaScript', label: 'Node (@kassa/client)', source: node },
    { lang: 'Python', label: 'Python (standard library)', source: py },
  ];
}

/** Applies the rules in the header comment to a generated document (mutates and returns it). */
export function finishDocument(doc: Json, scopesByRoute: Map<string, string[]>): Json {
  const components = ((doc.components as Json | undefined)?.schemas ?? {}) as Record<string, Schema>;
  for (const [name, fields] of Object.entries(REQUIRED_FIELDS)) {
    const s = components[name];
    if (s) s.required = [...new Set([...(s.required ?? []), ...fields])];
  }
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const open = isUnauthenticatedPath(path);
      const scopes = scopesByRoute.get(`${method} ${path}`) ?? [];
      op['x-kassa-scopes'] = scopes;
      const sentence = open
        ? 'No API key needed.'
        : scopes.length
          ? `Requires an API key with the scope${scopes.length > 1 ? 's' : ''} ${scopes.map((s) => `\`${s}\``).join(', ')}.`
          : 'Requires an API key (any scope).';
      op.description = op.description ? `${op.description as string}\n\n${sentence}` : sentence;
      if (open) op.security = [];

      const key = `${method} ${path}`;
      let body: unknown;
      const reqMedia = ((op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined)?.['application/json'];
      if (reqMedia) {
        body = REQUEST_EXAMPLES[key] ?? exampleFromSchema(reqMedia.schema as Schema, components);
        reqMedia.example = body;
      }
      let stream = false;
      for (const [code, res] of Object.entries((op.responses ?? {}) as Record<string, Json>)) {
        const content = res.content as Record<string, Json> | undefined;
        if (!content) continue;
        if (content['text/event-stream']) stream = code.startsWith('2') || stream;
        const media = content['application/json'];
        if (media && !('example' in media)) {
          media.example = exampleFromSchema(media.schema as Schema, components);
        }
      }
      op['x-codeSamples'] = codeSamples(method, path, op, body, stream);
    }
  }
  return doc;
}

export function registerOpenApiDocument(app: OpenAPIHono<AppEnv>, deps: Pick<Deps, 'config'>): void {
  registerPublicDocs(app);
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http', scheme: 'bearer', description: 'A secret API key: `Authorization: Bearer kassa_sk_…`',
  });
  let cached: string | undefined;
  app.get('/openapi.json', (c) => {
    cached ??= JSON.stringify(buildDocument(app, deps));
    return c.body(cached, 200, { 'content-type': 'application/json' });
  });
}

export function buildDocument(app: OpenAPIHono<AppEnv>, deps: Pick<Deps, 'config'>): Json {
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Kassa API',
      version: '1.0.0',
      description:
        'Self-hosted, non-custodial crypto payments. Every request under /v1 (except /v1/public) needs an API key; ' +
        'each operation lists the scopes it needs (`x-kassa-scopes`). ' +
        'Amounts are decimal strings in the unit of their currency or asset. Errors use one envelope: ' +
        '{"error":{"type","code","message","param","request_id"}}. Send an Idempotency-Key header on POST requests to retry safely.',
    },
    servers: [{ url: deps.config.publicUrl }],
    security: [{ bearerAuth: [] }],
  }) as unknown as Json;
  return finishDocument(doc, routeScopes.get(app) ?? new Map());
}

/**
 * Time spent waiting for a chain node, measured at the HTTP layer, for benchmarks that report
 * Kassa's own work apart from the node's (bench/watch-scale.ts).
 *
 * `meter.fetch(fetch)` is a drop-in `fetch` for Kassa's node clients (the Bitcoin client's
 * `fetch` option, the EVM client's `fetchFn`). A request counts from the call until its body has
 * been read in full, so the node's work and the transfer are inside, the JSON parsing that
 * follows is not. `busyMs` is the union of these intervals: requests in flight together (an EVM
 * pass sends several at once) count once. Each request is also attributed to its JSON-RPC
 * methods (`eth_call×5`, `getrawtransaction×100`), so one kind of call can be costed apart.
 *
 * The body read here is handed to the client as it is (`readResponse`): reading it a second time
 * from a new Response (a stream, and a copy of up to ~10 MB for a mainnet-size `getrawmempool`)
 * would add to Kassa's time work that only the meter causes.
 */
export interface RpcMeterSnapshot {
  /** Wall time with at least one request in flight, since the meter was created. */
  busyMs: number;
  /** HTTP requests sent (a JSON-RPC batch is one). */
  requests: number;
}

export interface RpcKindStats {
  requests: number;
  ms: number;
}

export interface RpcMeter {
  fetch(base: typeof fetch): typeof fetch;
  snapshot(): RpcMeterSnapshot;
  /** Per request kind ("method×count" of the batch, sorted): requests and summed duration. */
  readonly kinds: Map<string, RpcKindStats>;
}

function kindOf(body: unknown): string {
  if (typeof body !== 'string') return 'other';
  try {
    const parsed = JSON.parse(body) as { method?: string } | { method?: string }[];
    const calls = Array.isArray(parsed) ? parsed : [parsed];
    const n = new Map<string, number>();
    for (const c of calls) n.set(c.method ?? '?', (n.get(c.method ?? '?') ?? 0) + 1);
    return [...n].sort(([a], [b]) => a.localeCompare(b)).map(([m, k]) => (k > 1 ? `${m}×${k}` : m)).join('+');
  } catch {
    return 'other';
  }
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/** A Response whose body was already read: the client's reads return those bytes without a stream or a copy. */
function readResponse(bytes: ArrayBuffer, head: ResponseInit): Response {
  const text = () => Promise.resolve(Buffer.from(bytes).toString('utf8'));
  return Object.assign(new Response(null, head), { arrayBuffer: () => Promise.resolve(bytes), text, json: async (): Promise<unknown> => JSON.parse(await text()) });
}

export function createRpcMeter(): RpcMeter {
  let inflight = 0;
  let busySince = 0;
  let busy = 0;
  let requests = 0;
  const kinds = new Map<string, RpcKindStats>();
  return {
    kinds,
    fetch(base) {
      return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
        requests++;
        const kind = kindOf(init?.body);
        const t0 = performance.now();
        if (inflight++ === 0) busySince = t0;
        try {
          const res = await base(input, init);
          const body = await res.arrayBuffer();
          const head = { status: res.status, statusText: res.statusText, headers: res.headers };
          return NULL_BODY.has(res.status) ? new Response(null, head) : readResponse(body, head);
        } finally {
          const t1 = performance.now();
          if (--inflight === 0) busy += t1 - busySince;
          const k = kinds.get(kind) ?? { requests: 0, ms: 0 };
          k.requests++;
          k.ms += t1 - t0;
          kinds.set(kind, k);
        }
      };
    },
    snapshot() {
      return { busyMs: busy + (inflight > 0 ? performance.now() - busySince : 0), requests };
    },
  };
}

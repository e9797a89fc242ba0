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
 * The body is not read here: the client reads it through the meter (a pass-through stream whose
 * end closes the interval), so it reads the node's reply as it would without the meter (into the
 * adapter's reused buffers, for `getrawmempool`), and no copy made by the meter adds to Kassa's time or
 * to its garbage. A reply without a body closes the interval at once; a body the client stopped
 * reading would leave it open (Kassa's clients read every reply to the end).
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
        let open = true;
        const end = () => {
          if (!open) return;
          open = false;
          const t1 = performance.now();
          if (--inflight === 0) busy += t1 - busySince;
          const k = kinds.get(kind) ?? { requests: 0, ms: 0 };
          k.requests++;
          k.ms += t1 - t0;
          kinds.set(kind, k);
        };
        try {
          const res = await base(input, init);
          if (NULL_BODY.has(res.status) || !res.body) {
            end();
            return res;
          }
          const counted = res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ flush: end }));
          return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
        } catch (err) {
          end();
          throw err;
        }
      };
    },
    snapshot() {
      return { busyMs: busy + (inflight > 0 ? performance.now() - busySince : 0), requests };
    },
  };
}

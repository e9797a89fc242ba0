/**
 * The client's IP address, for per-IP rate limits and the dashboard's audit log.
 *
 * By default it is the TCP peer. Behind a reverse proxy (nginx, a load balancer) every customer
 * would then share the proxy's address, so TRUSTED_PROXIES lists the proxies whose
 * `X-Forwarded-For` is believed: when the peer is one of them, the header is read from the right
 * (the hop nearest to Kassa) and the first address that is not a trusted proxy is the client.
 * Addresses a client wrote itself sit further left and are never reached, so they cannot be used
 * to dodge a limit. A malformed hop stops the walk at the last trusted one.
 *
 * `clientIpMiddleware` resolves it once per request into the context; `clientIp(c)` reads it.
 */
import { BlockList, isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { parseTrustedProxy } from '../config.ts';

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`. */
const unmap = (ip: string) => (ip.toLowerCase().startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip);

function peerAddress(c: Context): string | null {
  try {
    const a = getConnInfo(c).remote.address;
    return a ? unmap(a) : null;
  } catch {
    return null; // in-process app.request() in tests: no socket
  }
}

export function createClientIpResolver(trusted: readonly string[]): (c: Context) => string {
  const list = new BlockList();
  for (const entry of trusted) {
    const p = parseTrustedProxy(entry);
    if (!p) throw new Error(`TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR range`);
    list.addSubnet(p.address, p.prefix, p.family);
  }
  const isTrusted = (ip: string) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
  return (c) => {
    const peer = peerAddress(c);
    if (peer === null) return 'local';
    if (trusted.length === 0 || !isTrusted(peer)) return peer;
    const hops = (c.req.header('x-forwarded-for') ?? '').split(',').map((h) => unmap(h.trim())).filter(Boolean);
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) break;
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
}

export function clientIpMiddleware(trusted: readonly string[]): MiddlewareHandler {
  const resolve = createClientIpResolver(trusted);
  return async (c, next) => {
    c.set('clientIp', resolve(c));
    await next();
  };
}

/** The resolved client IP (see above); the TCP peer when the middleware did not run; "local" without a socket. */
export function clientIp(c: Context): string {
  const resolved: string | undefined = c.get('clientIp');
  return resolved ?? peerAddress(c) ?? 'local';
}

/**
 * SSRF protection for webhook URLs: the host is resolved at delivery time and every address must
 * be a public unicast address, unless the host is allow-listed (WEBHOOK_ALLOWED_HOSTS). The HTTP
 * client then connects to the address that was checked (no second DNS lookup → no rebinding).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { KassaError } from '../errors.ts';

export interface ResolvedTarget {
  address: string;
  family: 4 | 6;
}

export class SsrfError extends KassaError {
  constructor(message: string) {
    super('webhook_target_forbidden', message, { status: 400, retryable: false });
    this.name = 'SsrfError';
  }
}

/** A URL's host name without IPv6 brackets, lowercase. */
export function hostOf(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

function v4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

const V4_BLOCKED: [string, number, string][] = [
  ['0.0.0.0', 8, 'unspecified/"this network"'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.31.196.0', 24, 'AS112 anycast'],
  ['192.52.193.0', 24, 'AMT anycast'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.175.48.0', 24, 'AS112 anycast'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved/broadcast'],
];

function blockedV4(ip: string): string | null {
  const n = v4ToInt(ip);
  for (const [base, bits, why] of V4_BLOCKED) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (((n & mask) >>> 0) === ((v4ToInt(base) & mask) >>> 0)) return why;
  }
  return null;
}

/** Parses an IPv6 address (with optional trailing dotted IPv4 and zone) into 8 16-bit groups. */
export function parseV6(ip: string): number[] | null {
  let s = ip.split('%')[0]!.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return null;
  const maybeV4 = s.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    if (isIP(maybeV4) !== 4) return null;
    const n = v4ToInt(maybeV4);
    s = s.slice(0, lastColon + 1) + ((n >>> 16) & 0xffff).toString(16) + ':' + (n & 0xffff).toString(16);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (p: string) => (p === '' ? [] : p.split(':').map((h) => (/^[0-9a-f]{1,4}$/.test(h) ? parseInt(h, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const given = head.length + rest.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const groups = [...head, ...new Array<number>(8 - given).fill(0), ...rest];
  if (groups.some((g) => Number.isNaN(g))) return null;
  return groups;
}

const embeddedV4 = (g: number[], hi: number, lo: number) =>
  `${g[hi]! >> 8}.${g[hi]! & 0xff}.${g[lo]! >> 8}.${g[lo]! & 0xff}`;

function blockedV6(ip: string): string | null {
  const g = parseV6(ip);
  if (!g) return 'unparseable IPv6 address';
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (g.every((x) => x === 0)) return 'unspecified';
  if (zeroUpTo(7) && g[7] === 1) return 'loopback';
  // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible), ::ffff:0:a.b.c.d (IPv4-translated)
  if (zeroUpTo(5) && g[5] === 0xffff) return 'IPv4-mapped IPv6';
  if (zeroUpTo(6)) return 'IPv4-compatible IPv6';
  if (zeroUpTo(4) && g[4] === 0xffff && g[5] === 0) return 'IPv4-translated IPv6';
  // NAT64: 64:ff9b::/96 (well-known) and 64:ff9b:1::/48 (local use)
  if (g[0] === 0x64 && g[1] === 0xff9b) return 'NAT64';
  if ((g[0]! & 0xfe00) === 0xfc00) return 'unique-local';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0]! & 0xffc0) === 0xfec0) return 'site-local';
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'documentation';
  if (g[0] === 0x3fff && (g[1]! & 0xf000) === 0) return 'documentation'; // 3fff::/20
  if (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 0) return 'discard-only';
  if (g[0] === 0x0100 && g[1] === 0 && g[2] === 0 && g[3] === 1) return 'dummy prefix';
  // 2001::/23 IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, AMT 2001:3::/32,
  // AS112 2001:4:112::/48, ORCHID 2001:10::/28, ORCHIDv2 2001:20::/28, drone remote ID 2001:30::/28, ...
  if (g[0] === 0x2001 && g[1] === 0) return 'Teredo';
  if (g[0] === 0x2001 && (g[1]! & 0xfff0) === 0x0010) return 'ORCHID';
  if (g[0] === 0x2001 && (g[1]! & 0xfff0) === 0x0020) return 'ORCHIDv2';
  if (g[0] === 0x2001 && g[1]! < 0x0200) return 'IETF protocol assignment';
  if (g[0] === 0x2620 && g[1] === 0x004f && g[2] === 0x8000) return 'AS112 anycast';
  if (g[0] === 0x5f00) return 'SRv6 SID';
  // 6to4 embeds an IPv4 address: refuse when that one is not public.
  if (g[0] === 0x2002) {
    const why = blockedV4(embeddedV4(g, 1, 2));
    if (why) return `6to4 of a ${why} address`;
  }
  // Everything else outside 2000::/3, the only global unicast space IANA allocates.
  if ((g[0]! & 0xe000) !== 0x2000) return 'not global unicast';
  return null;
}

/** Why an IP address may not be a webhook target, or null when it is public unicast. */
export function blockedReason(ip: string): string | null {
  const family = isIP(ip);
  if (family === 4) return blockedV4(ip);
  if (family === 6) return blockedV6(ip);
  return 'not an IP address';
}

export function isAllowListed(host: string, allowedHosts: readonly string[]): boolean {
  return allowedHosts.includes(host.toLowerCase());
}

/** Static check at endpoint creation: an IP-literal host must be public unless allow-listed. */
export function checkUrlHost(url: URL, allowedHosts: readonly string[]): void {
  const host = hostOf(url);
  if (isAllowListed(host, allowedHosts)) return;
  if (host === 'localhost' || host.endsWith('.localhost')) throw new SsrfError(`Webhook host ${host} is a loopback name and is not allowed.`);
  if (isIP(host)) {
    const why = blockedReason(host);
    if (why) throw new SsrfError(`Webhook host ${host} is a ${why} address and is not allowed.`);
  }
}

export type Resolver = (host: string) => Promise<ResolvedTarget[]>;

export const systemResolver: Resolver = async (host) => {
  const all = await dnsLookup(host, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Resolves the URL's host and returns the address to connect to. Every resolved address must be
 * allowed (an attacker controlling DNS could otherwise mix a public and a private answer).
 * Throws SsrfError when refused.
 */
export async function resolveTarget(url: URL, allowedHosts: readonly string[], resolver: Resolver = systemResolver): Promise<ResolvedTarget> {
  const host = hostOf(url);
  const literal = isIP(host);
  const addrs: ResolvedTarget[] = literal ? [{ address: host, family: literal === 6 ? 6 : 4 }] : await resolver(host);
  if (addrs.length === 0) throw new SsrfError(`Webhook host ${host} did not resolve.`);
  if (!isAllowListed(host, allowedHosts)) {
    for (const a of addrs) {
      const why = blockedReason(a.address);
      if (why) throw new SsrfError(`Webhook host ${host} resolves to ${a.address}, a ${why} address; refused.`);
    }
  }
  return addrs[0]!;
}

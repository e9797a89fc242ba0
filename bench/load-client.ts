/**
 * The load generator for bench/invoices.ts, run as its own process so it does not share a CPU
 * core's event loop with the servers it measures. Prints one JSON line with autocannon's summary.
 * Usage: tsx bench/load-client.ts <url> <seconds> <connections> [bearer]
 */
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';

const [url, seconds = '10', connections = '50', bearer] = process.argv.slice(2);
if (!url) throw new Error('usage: load-client.ts <url> <seconds> <connections> [bearer]');

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  method: 'POST',
  requests: [
    {
      method: 'POST',
      setupRequest: (req: Record<string, unknown>) => {
        const id = randomUUID();
        return {
          ...req,
          headers: {
            'content-type': 'application/json',
            'idempotency-key': id,
            ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
          },
          body: JSON.stringify({ amount: '25.00', currency: 'USD', order_id: id, payment_methods: ['BTC', 'USDC-ethereum'] }),
        };
      },
    },
  ],
});
process.stdout.write(JSON.stringify({
  rps: result.requests.average,
  total: result.requests.total,
  p50_ms: result.latency.p50,
  p99_ms: result.latency.p99,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
}) + '\n');

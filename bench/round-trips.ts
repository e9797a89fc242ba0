/**
 * Counts what this process sends to PostgreSQL and Redis, by watching its socket writes (for
 * bench/invoices.ts: statements and round trips per request do not depend on the machine's load,
 * unlike req/s). PostgreSQL frontend messages are read from the written bytes: a statement is an
 * Execute or a simple Query, a round trip ends with Sync or a simple Query (the client then waits
 * for ReadyForQuery). Redis commands are RESP arrays. `writes` counts socket writes (system calls),
 * which pipelining under concurrency makes fewer than round trips.
 */
import net from 'node:net';

export interface WireCounts {
  pgStatements: number;
  pgRoundTrips: number;
  pgWrites: number;
  redisCommands: number;
  redisWrites: number;
}

/** Starts counting writes to sockets connected to `pgPort` / `redisPort`; `stop()` answers the counts. */
export function countWire(pgPort: number, redisPort: number): { stop(): WireCounts } {
  const counts: WireCounts = { pgStatements: 0, pgRoundTrips: 0, pgWrites: 0, redisCommands: 0, redisWrites: 0 };
  const proto = net.Socket.prototype as unknown as { write: (...a: unknown[]) => boolean };
  const original = proto.write;
  proto.write = function (this: net.Socket, ...args: unknown[]) {
    const chunk = args[0];
    if (this.remotePort === pgPort) {
      counts.pgWrites++;
      if (Buffer.isBuffer(chunk) || chunk instanceof Uint8Array) pgMessages(Buffer.from(chunk as Uint8Array), counts);
    } else if (this.remotePort === redisPort) {
      counts.redisWrites++;
      counts.redisCommands += respCommands(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('latin1'));
    }
    return original.apply(this, args);
  };
  return {
    stop() {
      proto.write = original;
      return counts;
    },
  };
}

function pgMessages(buf: Buffer, counts: WireCounts): void {
  let i = 0;
  while (i + 5 <= buf.length) {
    const type = String.fromCharCode(buf[i]!);
    if (!'PBDESQHCXdcfp'.includes(type)) return; // a startup/SSL packet (no type byte): not a statement
    if (type === 'E') counts.pgStatements++;
    if (type === 'Q') { counts.pgStatements++; counts.pgRoundTrips++; }
    if (type === 'S') counts.pgRoundTrips++;
    i += 1 + buf.readInt32BE(i + 1);
  }
}

/** The number of RESP arrays (commands) in `s`; 1 when it cannot be read as such. */
function respCommands(s: string): number {
  let i = 0;
  let n = 0;
  const line = () => {
    const end = s.indexOf('\r\n', i);
    if (end < 0) throw new Error('short');
    const v = s.slice(i, end);
    i = end + 2;
    return v;
  };
  try {
    while (i < s.length) {
      const head = line();
      if (head[0] !== '*') return Math.max(1, n);
      const args = Number(head.slice(1));
      for (let a = 0; a < args; a++) {
        const bulk = line();
        if (bulk[0] !== '$') return Math.max(1, n);
        i += Number(bulk.slice(1)) + 2;
      }
      n++;
    }
  } catch {
    return Math.max(1, n);
  }
  return n;
}

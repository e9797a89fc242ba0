/**
 * Child processes of the sandbox with prefixed, readable output. Pino JSON lines become
 * `[api] 12:00:01 INFO  api listening url=http://127.0.0.1:3000`; other lines are printed as they
 * are, after the prefix. Children are killed (SIGTERM, then SIGKILL after a grace period) when the
 * sandbox stops, and also on process exit as a last resort, so no orphans stay behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const COLORS: Record<string, string> = { api: '36', worker: '35', bitcoin: '33', ethereum: '34', webhooks: '32', sandbox: '1' };
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const useColor = Boolean(process.stdout.isTTY);

export function prefix(name: string): string {
  const tag = `[${name}]`;
  return useColor ? `\x1b[${COLORS[name] ?? '0'}m${tag}\x1b[0m` : tag;
}

/** Writes one line under `name`'s prefix. */
export function say(name: string, line: string): void {
  process.stdout.write(`${prefix(name)} ${line}\n`);
}

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** A pino JSON line as one readable line; anything else unchanged. */
export function formatLogLine(line: string): string {
  const t = line.trim();
  if (!t.startsWith('{')) return line;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(t) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof o['level'] !== 'number') return line;
  const { level, time, msg, pid: _pid, hostname: _host, name: _name, ...rest } = o;
  const at = typeof time === 'string' ? time.slice(11, 19) : typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : '';
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${fieldValue(v)}`).join(' ');
  return `${at} ${LEVELS[level as number] ?? String(level)} ${String(msg ?? '')}${fields ? ' ' + fields : ''}`;
}

export interface ManagedChild {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHook = false;

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; filter?: (line: string) => boolean; onLine?: (line: string) => void },
): ManagedChild {
  // detached: false keeps the child in our process group, so a terminal Ctrl-C reaches it too;
  // we still stop it ourselves (the group signal is not guaranteed, e.g. under `npm run`).
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal ? 128 : null));
    });
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      opts.onLine?.(line);
      if (opts.filter && !opts.filter(line)) return;
      say(name, formatLogLine(line));
    });
  }
  return {
    name,
    child,
    exited,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves with `preferred` when it is free on 127.0.0.1, else with a free port. */
export async function portOrFree(preferred: number): Promise<number> {
  const tryPort = (port: number): Promise<number | null> =>
    new Promise((resolve) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', () => resolve(null));
      srv.listen(port, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : null;
        srv.close(() => resolve(p));
      });
    });
  if (preferred > 0) {
    const p = await tryPort(preferred);
    if (p !== null) return p;
  }
  const p = await tryPort(0);
  if (p === null) throw new Error('no free local port');
  return p;
}

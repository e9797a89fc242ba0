/**
 * Process management for the fault harness and the benches: every part of Kassa runs as its own
 * OS process (API, workers, Bitcoin devnet, hardhat node, redis-server), output goes to one log
 * file per process, and each can be killed (-9), stopped (SIGSTOP), resumed and restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KASSA_BIN = path.join(REPO_ROOT, 'bin', 'kassa.js');
export const HARDHAT_BIN = path.join(REPO_ROOT, 'node_modules', 'hardhat', 'internal', 'cli', 'bootstrap.js');
export const HARDHAT_CONFIG = path.join(REPO_ROOT, 'test', 'support', 'hardhat.config.cjs');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

export interface Proc {
  name: string;
  readonly pid: number;
  readonly logFile: string;
  alive(): boolean;
  exited(): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  kill9(): Promise<void>;
  pause(): void;
  resume(): void;
  /** Starts the same command again (after it exited). */
  restart(): Promise<void>;
  /** Last `n` characters of its log. */
  tail(n?: number): string;
}

const live = new Set<ChildProcess>();
let hook = false;
function installExitHook(): void {
  if (hook) return;
  hook = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGCONT');
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
}

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  logDir: string;
  onLine?: (line: string) => void;
}

export function spawnProc(name: string, cmd: string, args: string[], o: SpawnOptions): Proc {
  installExitHook();
  const logFile = path.join(o.logDir, `${name}.log`);
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  let child!: ChildProcess;
  let exitP!: Promise<void>;
  let generation = 0;
  const start = () => {
    generation++;
    log.write(`\n==== start #${generation} ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`);
    child = spawn(cmd, args, { cwd: REPO_ROOT, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let buf = '';
    const onData = (d: Buffer) => {
      log.write(d);
      if (!o.onLine) return;
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        o.onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => log.write(d));
    const c = child;
    exitP = new Promise<void>((resolve) => c.once('exit', (code, sig) => {
      live.delete(c);
      log.write(`==== exit code=${code} signal=${sig} ${new Date().toISOString()}\n`);
      resolve();
    }));
  };
  start();
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    get pid() { return child.pid!; },
    logFile,
    alive,
    exited: () => exitP,
    async stop(graceMs = 5_000) {
      if (!alive()) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitP;
      clearTimeout(t);
    },
    async kill9() {
      if (!alive()) return;
      child.kill('SIGKILL');
      await exitP;
    },
    pause() { if (alive()) child.kill('SIGSTOP'); },
    resume() { if (alive()) child.kill('SIGCONT'); },
    async restart() {
      if (alive()) throw new Error(`${name} is still running`);
      start();
    },
    tail(n = 3000) {
      try {
        const t = readFileSync(logFile, 'utf8');
        return t.slice(-n);
      } catch {
        return '';
      }
    },
  };
}

/** Peak and current resident set size of a process in kB (VmHWM, VmRSS), or null when gone. */
export function memoryOf(pid: number): { hwmKb: number; rssKb: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+)/.exec(s);
    const rss = /VmRSS:\s+(\d+)/.exec(s);
    return { hwmKb: Number(hwm?.[1] ?? 0), rssKb: Number(rss?.[1] ?? 0) };
  } catch {
    return null;
  }
}

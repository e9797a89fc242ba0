/**
 * Small helpers every CLI module uses. Kept free of heavy imports: src/cli/main.ts loads this
 * module for every command, `kassa help` included. The configuration lives in ./context.ts.
 */
import type { ParseArgsConfig } from 'node:util';
import { KassaError } from '../errors.ts';

/** One `kassa` command: its options (node:util parseArgs) and what it does. */
export interface Command {
  options?: ParseArgsConfig['options'];
  positionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

/** A usage or input problem: printed as one line, exit code 2. */
export class UsageError extends Error {}

export function fail(err: unknown): never {
  let message: string;
  let code = 1;
  if (err instanceof UsageError) {
    message = err.message;
    code = 2;
  } else if (err instanceof Error && err.name === 'ConfigError') message = `configuration error: ${err.message}`;
  else if (err instanceof KassaError) message = `${err.code}: ${err.message}${err.param ? ` (${err.param})` : ''}`;
  else if (err instanceof Error) {
    const pgCode = (err as { code?: string }).code;
    if (pgCode === 'ECONNREFUSED') message = `cannot connect: ${err.message}. Is PostgreSQL/Redis running? (see README "Requirements")`;
    else message = err.message;
  } else message = String(err);
  process.stderr.write(`kassa: ${message.split('\n')[0]}\n`);
  process.exit(code);
}

export function printResult(json: boolean, value: unknown, human: string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : human.endsWith('\n') ? human : human + '\n');
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** `--limit`: 1 to 1000, default 100. */
export function limitOf(values: Record<string, unknown>): number {
  const v = values.limit;
  if (v === undefined) return 100;
  if (typeof v !== 'string' || !/^[1-9]\d{0,3}$/.test(v) || Number(v) > 1000) throw new UsageError('--limit must be an integer from 1 to 1000');
  return Number(v);
}

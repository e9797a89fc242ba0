import { ConfigError, loadConfig, type Config } from '../config.ts';
import { KassaError } from '../errors.ts';

/** A usage or input problem: printed as one line, exit code 2. */
export class UsageError extends Error {}

export function fail(err: unknown): never {
  let message: string;
  let code = 1;
  if (err instanceof UsageError) {
    message = err.message;
    code = 2;
  } else if (err instanceof ConfigError) message = `configuration error: ${err.message}`;
  else if (err instanceof KassaError) message = `${err.code}: ${err.message}${err.param ? ` (${err.param})` : ''}`;
  else if (err instanceof Error) {
    const pgCode = (err as { code?: string }).code;
    if (pgCode === 'ECONNREFUSED') message = `cannot connect: ${err.message}. Is PostgreSQL/Redis running? (see README "Requirements")`;
    else message = err.message;
  } else message = String(err);
  process.stderr.write(`kassa: ${message.split('\n')[0]}\n`);
  process.exit(code);
}

export function config(): Config {
  return loadConfig(process.env);
}

export function printResult(json: boolean, value: unknown, human: string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : human.endsWith('\n') ? human : human + '\n');
}

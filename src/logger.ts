import { pino, destination, type Logger, type DestinationStream } from 'pino';
import { redactSecrets } from './redact.ts';

export type { Logger };

/**
 * Structured logger (pino): a message plus snake_case fields. Keys that could hold secrets are
 * redacted wherever they appear, as a second line of defence: code must not log secrets at all.
 * Every line, as written (message, fields, child bindings, error stacks), also goes through
 * `redactSecrets` (src/redact.ts): secret path segments (`/dashboard/setup/<token>`) and secret
 * query values never reach the log.
 */
export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.name ? { name: opts.name } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'secret', '*.secret', 'api_key', '*.api_key', 'authorization', '*.authorization',
          'headers.authorization', 'req.headers.authorization', 'password', '*.password',
          'xprv', '*.xprv', 'private_key', '*.private_key', 'smtp_url', '*.smtp_url',
        ],
        censor: '[redacted]',
      },
    },
    redactingDestination(opts.destination ?? destination(1)),
  );
}

function redactingDestination(inner: DestinationStream): DestinationStream {
  return { write: (line: string) => inner.write(redactSecrets(line)) };
}

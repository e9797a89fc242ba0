import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Structured logger (pino): a message plus snake_case fields. Keys that could hold secrets are
 * redacted wherever they appear, as a second line of defence: code must not log secrets at all.
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
    opts.destination,
  );
}

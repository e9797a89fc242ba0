/** Builds the webhook + e-mail pipeline pieces from Deps (used by workers/webhooks.ts and tests). */
import type { Deps } from '../deps.ts';
import { createEmailService, type EmailService } from '../email/service.ts';
import { createSmtpSender, type EmailSender } from '../email/sender.ts';
import { createWebhookDeliverer, type WebhookDeliverer } from './delivery.ts';
import { createWebhookRelay, type WebhookRelay } from './relay.ts';
import { createWebhookService, type WebhookService } from './service.ts';
import type { Resolver } from './ssrf.ts';

export interface WebhookPipeline {
  service: WebhookService;
  relay: WebhookRelay;
  deliverer: WebhookDeliverer;
  emails: EmailService;
  sender: EmailSender | null;
}

export function createWebhookPipeline(
  deps: Pick<Deps, 'sql' | 'config' | 'logger' | 'queues'>,
  opts: { resolver?: Resolver; sender?: EmailSender | null; disableAfterMs?: number } = {},
): WebhookPipeline {
  const sender = opts.sender !== undefined ? opts.sender : deps.config.smtpUrl ? createSmtpSender({ smtpUrl: deps.config.smtpUrl, from: deps.config.smtpFrom }) : null;
  const emails = createEmailService({ sql: deps.sql, config: deps.config, logger: deps.logger, queues: deps.queues, sender });
  return {
    service: createWebhookService(deps),
    relay: createWebhookRelay({ sql: deps.sql, logger: deps.logger, queues: deps.queues, emails }),
    deliverer: createWebhookDeliverer({
      sql: deps.sql, config: deps.config, logger: deps.logger, queues: deps.queues,
      ...(opts.resolver ? { resolver: opts.resolver } : {}),
      ...(opts.disableAfterMs !== undefined ? { disableAfterMs: opts.disableAfterMs } : {}),
    }),
    emails,
    sender,
  };
}

export { verifyWebhook, WebhookVerificationError } from './verify.ts';

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../../deps.ts';
import { invalidParam } from '../../errors.ts';
import { reconciliationCsv, reconciliationReport } from '../../reports/reconciliation.ts';
import type { AppEnv } from '../env.ts';
import { requireScope } from '../middleware/auth.ts';
import { commonErrors, isoTimeOrDate } from '../schemas.ts';

const Query = z.strictObject({
  from: isoTimeOrDate().openapi({ description: 'Start of the period (inclusive), ISO-8601 date or time', example: '2026-11-01' }),
  to: isoTimeOrDate().openapi({ description: 'End of the period (exclusive)', example: '2026-12-01' }),
  format: z.enum(['json', 'csv']).default('json'),
});

const MAX_DAYS = 366;

export function registerReportRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/v1/reports/reconciliation', tags: ['Reports'],
      summary: 'Reconciliation of invoices against on-chain payments for a period (JSON or CSV)',
      middleware: [requireScope('reports:read')] as const,
      request: { query: Query },
      responses: {
        200: {
          description: 'The report. CSV: one row per payment, RFC 4180, columns documented in docs/reconciliation.md.',
          content: { 'application/json': { schema: z.object({ object: z.literal('reconciliation_report') }).passthrough() }, 'text/csv': { schema: z.string() } },
        },
        ...commonErrors,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const from = new Date(q.from);
      const to = new Date(q.to);
      if (!(from < to)) throw invalidParam('to', 'to must be later than from.');
      if (to.getTime() - from.getTime() > MAX_DAYS * 86_400_000) throw invalidParam('to', `A report covers at most ${MAX_DAYS} days.`);
      const report = await reconciliationReport(deps.sql, deps.assets, c.get('auth').merchant.id, from, to);
      if (q.format === 'csv') {
        return c.text(reconciliationCsv(report), 200, {
          'Content-Type': 'text/csv; charset=utf-8',
          'Content-Disposition': `attachment; filename="kassa-reconciliation-${q.from.slice(0, 10)}-${q.to.slice(0, 10)}.csv"`,
        });
      }
      return c.json(report, 200);
    },
  );
}

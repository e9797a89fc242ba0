/**
 * Issue 15 finding 5: CSV formula injection. Text cells starting with =, +, -, @, tab or CR are
 * neutralised in every CSV (API and dashboard exports share src/csv.ts); number columns stay
 * plain numbers, a negative difference included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { csvCell } from '../../src/csv.ts';
import { CSV_COLUMNS } from '../../src/reports/reconciliation.ts';
import { createTestContext, req, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { signedInOwner } from './dashboard-session.ts';

let ctx: TestContext;
let app: ReturnType<typeof createApp>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
const ATTACK = "-2+3+cmd|' /C calc'!A0";

beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
  app = createApp(ctx.deps);
  shop = await createPayableMerchant(ctx.deps, { bitcoin: false });
});
afterAll(async () => ctx?.close());

/** Splits simple CSV (no quoted commas in the cells read here) into rows of cells by column name. */
function rows(csv: string): Record<string, string>[] {
  const [header, ...lines] = csv.trimEnd().split('\r\n');
  const cols = header!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])));
}

describe('CSV cells', () => {
  it('an order_id starting with "-" and a digit is neutralised in the API and dashboard exports; the negative difference stays a number', async () => {
    for (const order_id of [ATTACK, '=HYPERLINK("http://x")', '+1', '@SUM(A1)', '\tx']) {
      const res = await app.request('/v1/invoices', req(shop.secret, 'POST', { amount: '10.00', currency: 'USD', order_id }));
      expect(res.status).toBe(201);
    }
    const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const to = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const api = await app.request(`/v1/reports/reconciliation?from=${from}&to=${to}&format=csv`, req(shop.secret, 'GET'));
    expect(api.status).toBe(200);
    const apiCsv = await api.text();

    const { client } = await signedInOwner(app, ctx.deps, shop.merchant.id, 'csv-owner@example.com');
    const dash = await client.get(`/dashboard/reconciliation.csv?from=${from}&to=${to}`);
    expect(dash.res.status).toBe(200);
    expect(dash.res.headers.get('content-type')).toMatch(/^text\/csv/);

    for (const csv of [apiCsv, dash.text]) {
      expect(csv.split('\r\n')[0]).toBe(CSV_COLUMNS.join(','));
      const attack = rows(csv).find((r) => r.order_id!.includes('cmd|'));
      expect(attack!.order_id).toBe(`'${ATTACK}`);
      expect(attack!.invoice_expected).toBe('10.00');
      expect(attack!.invoice_difference).toBe('-10.00'); // a number, not text
      expect(csv).toContain(`,"'=HYPERLINK(""http://x"")",`);
      expect(csv).toContain(",'+1,");
      expect(csv).toContain(",'@SUM(A1),");
      expect(csv).toContain(",'\tx,");
      // No text cell starts with a formula character.
      for (const r of rows(csv)) {
        for (const [col, v] of Object.entries(r)) {
          if (!['invoice_expected', 'invoice_received', 'invoice_difference'].includes(col)) expect(v).not.toMatch(/^"?[=+\-@\t\r]/);
        }
      }
    }
  });

  it('csvCell: number columns keep plain decimals, anything else in them is text', () => {
    expect(csvCell('-0.50', 'number')).toBe('-0.50');
    expect(csvCell('12', 'number')).toBe('12');
    expect(csvCell('-2+3', 'number')).toBe("'-2+3");
    expect(csvCell('-0.50')).toBe("'-0.50");
    expect(csvCell('\rx')).toBe(`"'\rx"`);
    expect(csvCell(null, 'number')).toBe('');
  });
});

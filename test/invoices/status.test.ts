/**
 * The invoice status and exception lists are declared once in src/invoices/status.ts; the database
 * keeps its own copy as check constraints (a migration cannot import TypeScript). This checks that
 * the two agree, and that the OpenAPI document publishes the same lists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrate.ts';
import { INVOICE_EXCEPTIONS, INVOICE_STATUSES } from '../../src/invoices/status.ts';
import { createTestContext, createTestDatabase, type TestContext } from '../support/db.ts';
import { createApp } from '../../src/api/app.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = createSql(db.url, { max: 1 });
  await migrate(sql);
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

/** The quoted values of the check constraint on invoices.<column>, in order. */
async function checkedValues(column: string): Promise<string[]> {
  const rows = await sql<{ def: string }[]>`
    select pg_get_constraintdef(c.oid) as def from pg_constraint c
    where c.conrelid = 'invoices'::regclass and c.contype = 'c'
      and c.conkey = array[(select attnum from pg_attribute where attrelid = 'invoices'::regclass and attname = ${column})]::int2[]`;
  expect(rows).toHaveLength(1);
  return [...rows[0]!.def.matchAll(/'([^']+)'::text/g)].map((m) => m[1]!);
}

describe('invoice status and exception lists', () => {
  it('the database check constraints allow exactly the declared statuses and exceptions', async () => {
    expect(await checkedValues('status')).toEqual([...INVOICE_STATUSES]);
    expect(await checkedValues('exception')).toEqual([...INVOICE_EXCEPTIONS]);
  });

  it('the OpenAPI document lists the same statuses and exceptions wherever an invoice is described', async () => {
    let ctx: TestContext | undefined;
    try {
      ctx = await createTestContext();
      const spec = (await (await createApp(ctx.deps).request('/openapi.json')).json()) as { components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }> } };
      for (const name of ['Invoice', 'PublicInvoice']) {
        const props = spec.components.schemas[name]?.properties;
        expect(props?.status?.enum, name).toEqual([...INVOICE_STATUSES]);
        expect(props?.exception?.enum?.filter((e) => e !== null), name).toEqual([...INVOICE_EXCEPTIONS]);
      }
    } finally {
      await ctx?.close();
    }
  });
});

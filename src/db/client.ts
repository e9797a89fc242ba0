import postgres from 'postgres';

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type TxSql = postgres.TransactionSql<{ bigint: bigint }>;
/** Either the pool or a transaction: services accept this so callers can compose transactions. */
export type Db = Sql | TxSql;

const NUMERIC_OID = 1700;
const INT8_OID = 20;

/**
 * Creates the postgres.js pool. `numeric` and `int8` are read as `bigint`: Kassa stores every amount
 * as `numeric(78,0)` base units, so a numeric column must never hold a fraction (rates and
 * percentages are stored as text decimal strings or integer basis points instead).
 */
export function createSql(url: string, opts: { max?: number; onnotice?: (n: postgres.Notice) => void } = {}): Sql {
  const sql = postgres(url, {
    max: opts.max ?? 10,
    onnotice: opts.onnotice ?? (() => {}),
    connect_timeout: 10,
    types: {
      bigint: {
        to: NUMERIC_OID,
        from: [NUMERIC_OID, INT8_OID],
        serialize: (x: bigint | number | string) => x.toString(),
        parse: (x: string) => BigInt(x),
      },
    },
  });
  return withBigintParameters(sql as unknown as Sql);
}

/** A bigint parameter as a string: typed "unknown", so Postgres takes the column's type. */
function toParam(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.some((x) => typeof x === 'bigint' || (x !== null && typeof x === 'object' && !(x instanceof Date) && !(x instanceof Uint8Array))) ? v.map(toParam) : v;
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'bigint' ? x.toString() : x]));
  }
  return v;
}

/**
 * postgres.js sends every JS bigint parameter as int8, which overflows above 2^63 (about 9.2 ETH in
 * wei). Kassa's amounts are numeric(78,0), so this wrapper passes bigint parameters as decimal
 * strings of unknown type instead, letting Postgres use the target column's type. It applies to
 * the pool, transactions (begin/savepoint) and reserved connections alike.
 */
function withBigintParameters<T extends object>(target: T): T {
  return new Proxy(target, {
    apply(fn, thisArg, args: unknown[]) {
      const first = args[0];
      const isTemplate = Array.isArray(first) && 'raw' in (first as object);
      const mapped = isTemplate ? [first, ...args.slice(1).map(toParam)] : [toParam(first), ...args.slice(1)];
      return Reflect.apply(fn as (...a: unknown[]) => unknown, thisArg, mapped);
    },
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver);
      if ((prop === 'begin' || prop === 'savepoint') && typeof value === 'function') {
        return (...args: unknown[]) => {
          const cb = args[args.length - 1] as (tx: object) => unknown;
          return value.apply(obj, [...args.slice(0, -1), (tx: object) => cb(withBigintParameters(tx))]);
        };
      }
      if (prop === 'reserve' && typeof value === 'function') {
        return async () => withBigintParameters(await value.apply(obj, []));
      }
      if (prop === 'unsafe' && typeof value === 'function') {
        return (query: string, params?: unknown[], opts?: unknown) => value.call(obj, query, params?.map(toParam), opts);
      }
      return value;
    },
  });
}

/** The database name in a postgres URL. */
export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL has no database name: ${redactUrl(url)}`);
  return name;
}

/** A URL safe to print: the password is replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

/**
 * Creates the configured database when it does not exist yet (docs/architecture.md §9), connecting to the
 * server's `postgres` maintenance database. Returns true when it created it.
 */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  const adminUrl = new URL(url);
  adminUrl.pathname = '/postgres';
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    if (rows.length > 0) return false;
    try {
      await admin.unsafe(`create database "${name.replace(/"/g, '""')}"`);
    } catch (err) {
      // Another process created it at the same moment.
      if ((err as { code?: string }).code === '42P04') return false;
      throw err;
    }
    return true;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

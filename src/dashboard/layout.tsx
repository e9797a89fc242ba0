/**
 * The dashboard's page shell, navigation and small shared pieces. Server-rendered Hono JSX: every
 * value goes through JSX escaping, nothing is injected as raw HTML. One same-origin stylesheet, no
 * script (the CSP in routes.tsx allows no script at all).
 */
import type { FC, PropsWithChildren } from 'hono/jsx';
import type { Session } from './auth.ts';
import { can, type Permission } from './permissions.ts';
import { DASHBOARD_ASSET_VERSION } from './assets.ts';

export interface PageCtx {
  session: Session;
  /** Current path, for aria-current in the navigation. */
  path: string;
  notice?: string | undefined;
  error?: string | undefined;
}

export const Shell: FC<PropsWithChildren<{ title: string }>> = ({ title, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="no-referrer" />
      <meta name="robots" content="noindex, nofollow" />
      <title>{title} · Kassa</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href={`/dashboard/static/dashboard.css?v=${DASHBOARD_ASSET_VERSION}`} />
    </head>
    <body>{children}</body>
  </html>
);

export const Csrf: FC<{ session: Session }> = ({ session }) => <input type="hidden" name="_csrf" value={session.csrf} />;

const NAV: { href: string; label: string; permission: Permission }[] = [
  { href: '/dashboard', label: 'Overview', permission: 'invoices:read' },
  { href: '/dashboard/invoices', label: 'Invoices', permission: 'invoices:read' },
  { href: '/dashboard/payments', label: 'Payments', permission: 'invoices:read' },
  { href: '/dashboard/reconciliation', label: 'Reconciliation', permission: 'reports:read' },
  { href: '/dashboard/settings', label: 'Settings', permission: 'settings:read' },
  { href: '/dashboard/audit', label: 'Audit log', permission: 'audit:read' },
];

function current(path: string, href: string): boolean {
  if (href === '/dashboard') return path === '/dashboard' || path === '/dashboard/';
  return path === href || path.startsWith(href + '/');
}

export const Layout: FC<PropsWithChildren<{ ctx: PageCtx; title: string }>> = ({ ctx, title, children }) => {
  const { session } = ctx;
  return (
    <Shell title={title}>
      <a class="skip" href="#main">Skip to the content</a>
      <header class="top">
        <div class="top-inner">
          <a class="brand" href="/dashboard">Kassa<small id="merchant-name">{session.merchant.name}</small></a>
          <nav class="nav" aria-label="Dashboard">
            {NAV.filter((n) => can(session.user.role, n.permission)).map((n) => (
              <a href={n.href} aria-current={current(ctx.path, n.href) ? 'page' : undefined}>{n.label}</a>
            ))}
          </nav>
          <div class="who">
            <a href="/dashboard/account" id="who">{session.user.email}</a>
            <span class="badge" id="role">{session.user.role}</span>
            <form method="post" action="/dashboard/logout" class="inline">
              <Csrf session={session} />
              <button type="submit" class="secondary" id="logout">Sign out</button>
            </form>
          </div>
        </div>
      </header>
      <main id="main" tabindex={-1}>
        {ctx.notice ? <p class="notice" role="status" id="notice">{ctx.notice}</p> : null}
        {ctx.error ? <p class="error" role="alert" id="error">{ctx.error}</p> : null}
        {children}
      </main>
    </Shell>
  );
};

/** A page outside a session (sign-in, setup, errors). */
export const Bare: FC<PropsWithChildren<{ title: string }>> = ({ title, children }) => (
  <Shell title={title}>
    <main>
      <div class="card narrow">
        <p class="brand">Kassa</p>
        {children}
      </div>
    </main>
  </Shell>
);

export const Badge: FC<{ value: string | null | undefined; kind?: 'exception' }> = ({ value, kind }) =>
  value ? <span class={`badge badge-${kind ?? value}`}>{value}</span> : null;

export const When: FC<{ at: Date | string | null | undefined }> = ({ at }) => {
  if (!at) return <span class="muted">—</span>;
  const d = typeof at === 'string' ? new Date(at) : at;
  const iso = d.toISOString();
  return <time datetime={iso}>{iso.slice(0, 19).replace('T', ' ')} UTC</time>;
};

export function qs(params: Record<string, string | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function duration(seconds: number | null): string {
  if (seconds === null) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

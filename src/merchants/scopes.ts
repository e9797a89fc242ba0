export const SCOPES = ['invoices:read', 'invoices:write', 'refunds:read', 'refunds:write', 'payouts:read', 'payouts:write', 'reports:read', 'webhooks:write', 'settings:write'] as const;
export type Scope = (typeof SCOPES)[number];
export const WRITE_SCOPES: readonly Scope[] = ['invoices:write', 'refunds:write', 'payouts:write', 'webhooks:write', 'settings:write'];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

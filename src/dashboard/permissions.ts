/**
 * Dashboard roles and the ONE table of who may do what. Every page and every action asks
 * `can(role, permission)` (through `requirePermission` in routes.tsx), and pages hide buttons with
 * the same call, so what is shown and what is allowed cannot drift apart.
 */
export const ROLES = ['owner', 'developer', 'finance', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s);
}

export const PERMISSIONS = {
  /** Overview, invoices, payments (list and detail). */
  'invoices:read': ['owner', 'developer', 'finance', 'viewer'],
  /** Mark an invoice settled or invalid (an exception), with a reason. */
  'invoices:mark': ['owner', 'finance'],
  /** The reconciliation page. */
  'reports:read': ['owner', 'finance', 'viewer'],
  /** CSV export of the reconciliation. */
  'reports:export': ['owner', 'finance'],
  /** Settings pages (read): payment methods, invoice defaults. */
  'settings:read': ['owner', 'developer', 'finance', 'viewer'],
  /** Change expiry, tolerance, speed policy. */
  'settings:write': ['owner', 'developer'],
  /** List, create and revoke API keys. */
  'keys:manage': ['owner', 'developer'],
  /** Webhook endpoints, and redelivering an event. */
  'webhooks:manage': ['owner', 'developer'],
  /** Invite users, change roles, revoke users and their sessions, require 2FA for owners. */
  'users:manage': ['owner'],
  /** The audit log. */
  'audit:read': ['owner'],
  /** Create a refund of a paid invoice (and send its claim link), cancel one not yet broadcast. */
  'refunds:create': ['owner', 'finance'],
  /**
   * Approve a claimed refund (Kassa then prepares the transaction), and the setting that lets the
   * person who created a refund approve it too (by default another owner must).
   */
  'refunds:approve': ['owner'],
  /** Send an approved refund: the browser wallet, the signed PSBT, or report the transaction id. */
  'refunds:sign': ['owner', 'finance'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

export const ROLE_DESCRIPTIONS: Record<Role, string> = {
  owner: 'everything; approves refunds; manages users and API keys',
  developer: 'API keys, webhooks and settings; reads invoices',
  finance: 'reads invoices, payments and reports; exports; marks exceptions; creates and sends refunds',
  viewer: 'read only',
};

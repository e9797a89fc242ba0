/** The dashboard's stylesheet and its one script, read once at start-up and served from /dashboard/static/. */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export const DASHBOARD_CSS = readFileSync(new URL('./dashboard.css', import.meta.url), 'utf8');
/** "Send with your browser wallet" for approved EVM refunds (refunds-section.tsx); no other page has a script. */
export const DASHBOARD_WALLET_JS = readFileSync(new URL('./refund-wallet.client.js', import.meta.url), 'utf8');
export const DASHBOARD_ASSET_VERSION = createHash('sha256').update(DASHBOARD_CSS).update(DASHBOARD_WALLET_JS).digest('hex').slice(0, 12);

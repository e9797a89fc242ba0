/** The dashboard's one stylesheet, read once at start-up and served from /dashboard/static/. */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export const DASHBOARD_CSS = readFileSync(new URL('./dashboard.css', import.meta.url), 'utf8');
export const DASHBOARD_ASSET_VERSION = createHash('sha256').update(DASHBOARD_CSS).digest('hex').slice(0, 12);

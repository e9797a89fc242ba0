/**
 * Real headless Chromium for the checkout tests and the screenshot script (playwright-core with the
 * system Chromium; no browser download). A missing Chromium is an error, never a skip.
 */
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import jsQR from 'jsqr';
import { createApp } from '../../src/api/app.ts';
import type { Deps } from '../../src/deps.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is required for the checkout browser tests but was not found at ${CHROMIUM_PATH}. ` +
        'Install it (Debian: apt-get install -y chromium) or set CHROMIUM_PATH to its executable.',
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

export interface TestServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `createApp(deps)` on 127.0.0.1 with a free port (a real socket, so SSE and client IPs are real). */
export async function startTestServer(deps: Deps): Promise<TestServer> {
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Screenshots an element and decodes the QR code in it (jsQR); null when none is found. */
export async function decodeQrIn(page: Page, selector: string): Promise<string | null> {
  const png = PNG.sync.read(await page.locator(selector).screenshot());
  const found = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height);
  return found?.data ?? null;
}

/** Waits until the QR <img> has loaded (complete with a natural size). */
export async function waitForImage(page: Page, selector: string): Promise<void> {
  await page.waitForFunction(
    (sel: string) => {
      const el = (globalThis as unknown as { document: { querySelector(s: string): { complete: boolean; naturalWidth: number } | null } }).document.querySelector(sel);
      return !!el && el.complete && el.naturalWidth > 0;
    },
    selector,
  );
}

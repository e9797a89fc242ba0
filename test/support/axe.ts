/**
 * axe-core in real Chromium: injects axe.min.js (the context must be created with bypassCSP, since
 * the pages' CSP allows only same-origin scripts) and returns the violations, one line each.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: AXE_SOURCE });
  const result = (await page.evaluate(
    "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + n.failureSummary) })))",
  )) as { id: string; impact: string; nodes: string[] }[];
  return result.map((v) => `${v.id} (${v.impact}): ${v.nodes.join(' | ')}`);
}

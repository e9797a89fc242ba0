#!/usr/bin/env node
// Entry point of the `kassa` command.
//
// Runs the compiled build in dist/ (`npm run build`, done by `npm ci` / `npm install` through the
// `prepare` script) when it was built from exactly the sources in src/ and workers/: dist/BUILD.json
// holds a hash of their contents and this file computes it again (about 10 ms). When dist/ is
// missing or stale (a source file was edited, added or deleted since the build), it runs the
// TypeScript sources through tsx's loader instead: slower to start, never old code.
// KASSA_FROM_SOURCE=1 always runs the sources.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sourceHash } from './source-hash.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function builtHash() {
  try {
    return JSON.parse(readFileSync(new URL('../dist/BUILD.json', import.meta.url), 'utf8')).source_hash ?? null;
  } catch {
    return null;
  }
}

const fromSource = process.env.KASSA_FROM_SOURCE === '1';
const built = fromSource ? null : builtHash();
if (built !== null && built === sourceHash(root)) {
  await import('../dist/kassa.js');
} else {
  if (built !== null && process.stderr.isTTY) {
    process.stderr.write('kassa: dist/ is older than the sources, running them through tsx (slower start; "npm run build" rebuilds)\n');
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}

#!/usr/bin/env node
// `npm run build` (also run by `npm ci` / `npm install` through the `prepare` script): compiles the
// `kassa` command (src/cli/main.ts and everything it imports, src/ and workers/) with esbuild into
// dist/ and writes dist/BUILD.json with a hash of the sources (bin/source-hash.js). bin/kassa.js
// runs dist/ only while that hash matches the sources; otherwise it runs them through tsx.
//
// - One ES module per command group: the CLI imports a command's code only when it runs
//   (dynamic imports become separate chunks, shared code is split out, all flat in dist/).
// - Kassa's own code is bundled; of the packages, only those in BUNDLED_PACKAGES (viem, zod,
//   @hono/zod-openapi, ioredis, …: many small files that take most of the start-up time when loaded
//   one by one) are bundled, so that only the parts Kassa uses are loaded. Every other package
//   stays an import of node_modules/.
// - Files next to the code (SQL migrations, CSS, the checkout's browser script, the hardhat
//   config) are copied to dist/src/… and dist/workers/…, and each `new URL('<path>',
//   import.meta.url)` in the sources is rewritten to point at the same file from dist/.
//
// Plain JavaScript so that it runs before anything is compiled. esbuild strips types only: type
// errors are `npm run typecheck`'s job.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCE_DIRS, sourceHash } from '../bin/source-hash.js';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const DIST = path.join(ROOT, 'dist');

/** Packages bundled into dist/ (with their own dependencies); all others are loaded from node_modules/. */
const BUNDLED_PACKAGES = new Set([
  'viem', 'zod', '@hono/zod-openapi', 'bitcoinjs-lib', 'bip32', 'ecpair', '@bitcoinerlab/secp256k1', '@noble/hashes', 'otpauth', 'prom-client', 'qrcode',
  // CommonJS spread over ~60 files: bundled it loads in about a third of the time. BullMQ (loaded
  // only when a queue is used, never bundled) keeps its own node_modules copy; it accepts Kassa's
  // connections by their methods, not their class.
  'ioredis',
]);
/** Never bundled, even as a dependency of a bundled package (one shared copy with the unbundled code). */
const NEVER_BUNDLED = new Set(['hono', '@hono/node-server']);

function walk(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

const packageName = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
const isSource = (file) => SOURCE_DIRS.some((d) => file.startsWith(path.join(ROOT, d) + path.sep));

const externals = {
  name: 'kassa-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { path: args.path, external: true };
      const name = packageName(args.path);
      if (NEVER_BUNDLED.has(name)) return { path: args.path, external: true };
      const fromOwnCode = isSource(args.importer);
      if (fromOwnCode && !BUNDLED_PACKAGES.has(name)) return { path: args.path, external: true };
      return undefined; // bundled
    });
  },
};

/**
 * `new URL('<relative path>', import.meta.url)` in a source file → the same target seen from a
 * module in dist/ (files under src/ and workers/ are copied to dist/src/…, dist/workers/…).
 */
const URL_RE = /new URL\((['"])(\.{1,2}(?:\/[^'"]*)?)\1,\s*import\.meta\.url\)/g;
const assetUrls = {
  name: 'kassa-asset-urls',
  setup(b) {
    b.onLoad({ filter: /\.tsx?$/ }, (args) => {
      if (!isSource(args.path)) return undefined;
      const text = readFileSync(args.path, 'utf8');
      const contents = text.replace(URL_RE, (_m, q, rel) => {
        const target = path.resolve(path.dirname(args.path), rel);
        const inDist = isSource(target) ? path.join(DIST, path.relative(ROOT, target)) : target;
        let mapped = path.relative(DIST, inDist).split(path.sep).join('/');
        mapped = mapped === '' ? './' : mapped.startsWith('.') ? mapped : `./${mapped}`;
        if (rel.endsWith('/') || rel.endsWith('..') || rel === '.') mapped = mapped.endsWith('/') ? mapped : `${mapped}/`;
        return `new URL(${q}${mapped}${q}, import.meta.url)`;
      });
      return { contents, loader: args.path.endsWith('.tsx') ? 'tsx' : 'ts' };
    });
  },
};

const started = Date.now();
const hash = sourceHash(ROOT);
const files = SOURCE_DIRS.flatMap((d) => walk(path.join(ROOT, d)));
const assets = files.filter((f) => !/\.tsx?$/.test(f));

// Build into a fresh temporary folder, then swap it in: a process starting meanwhile sees the old
// complete dist/ (whose hash no longer matches, so it runs the sources) or the new one, never half.
const tmp = path.join(ROOT, `dist.tmp-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
const result = await build({
  entryPoints: { kassa: path.join(ROOT, 'src/cli/main.ts') },
  outdir: tmp,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  plugins: [externals, assetUrls],
  format: 'esm',
  platform: 'node',
  target: 'node20',
  jsx: 'automatic',
  jsxImportSource: 'hono/jsx',
  // Bundled CommonJS code (a dependency of a bundled package) may call require().
  banner: { js: "import { createRequire as __kassaCreateRequire } from 'node:module'; const require = __kassaCreateRequire(import.meta.url);" },
  sourcemap: 'linked',
  sourcesContent: false,
  metafile: true,
  logLevel: 'warning',
});
for (const file of assets) {
  const dest = path.join(tmp, path.relative(ROOT, file));
  mkdirSync(path.dirname(dest), { recursive: true });
  cpSync(file, dest);
}
const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
writeFileSync(
  path.join(tmp, 'BUILD.json'),
  JSON.stringify({ source_hash: hash, modules: outputs.length, assets: assets.length, built_at: new Date().toISOString() }, null, 2) + '\n',
);
const old = path.join(ROOT, `dist.old-${process.pid}`);
if (existsSync(DIST)) renameSync(DIST, old);
renameSync(tmp, DIST);
rmSync(old, { recursive: true, force: true });
process.stderr.write(`kassa build: ${outputs.length} modules and ${assets.length} files → dist/ in ${Date.now() - started} ms\n`);

// The hash that ties dist/ to the sources it was built from (scripts/build.mjs writes it into
// dist/BUILD.json; bin/kassa.js compares it before running dist/). It covers the content and path of
// every file under src/ and workers/ (TypeScript and assets: migrations, CSS, …), the files they
// import from elsewhere (SHARED_FILES) and the files that decide how they are compiled. Any edit,
// new or deleted file changes it, so a stale dist/ never runs. Contents, not modification times: a
// checkout or copy that keeps old times is still caught.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const SOURCE_DIRS = ['src', 'workers'];
const BUILD_FILES = ['tsconfig.json', 'scripts/build.mjs', 'bin/source-hash.js'];
/** Files outside src/ and workers/ that the CLI bundles: the SDK's SSE parser (src/cli/listen.ts). */
export const SHARED_FILES = ['packages/client/src/sse.ts'];

function collect(root, rel, out) {
  let entries;
  try {
    entries = readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) collect(root, child, out);
    else if (entry.isFile()) out.push(child);
  }
}

/** sha256 over (path, length, content) of every source file, in sorted path order. */
export function sourceHash(root) {
  const files = [];
  for (const dir of SOURCE_DIRS) collect(root, dir, files);
  files.push(...BUILD_FILES, ...SHARED_FILES);
  files.sort();
  const h = createHash('sha256');
  for (const rel of files) {
    let content;
    try {
      content = readFileSync(path.join(root, rel));
    } catch {
      content = Buffer.alloc(0);
    }
    h.update(`${rel}\0${content.length}\0`);
    h.update(content);
  }
  return h.digest('hex');
}

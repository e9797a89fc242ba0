#!/usr/bin/env node
// Runs after `npm ci` / `npm install` (the root package's "postinstall"): applies Kassa's small,
// reviewed fixes to third-party code that has no released fix yet. Each patch names the upstream
// report, checks the exact installed version and text, is idempotent, and fails the install
// loudly when the text it expects is not there (so an upgrade cannot silently drop a fix).
//
// postgres 3.4.9 (porsager/postgres #1154, #1208; open PRs #1168, #1209):
//   small writes are flushed from a setImmediate; when the server closes the connection first
//   (pg_terminate_backend, a restart, a proxy), closed() sets `socket = null`, and the pending
//   flush then throws `TypeError: Cannot read properties of null (reading 'write')` from the timer,
//   where no caller can catch it: the process dies. closed()/terminate() also cancel the timer
//   without forgetting it, so a later write on that connection is never flushed. The fix: a flush
//   with no socket settles the connection's queries with CONNECTION_CLOSED (the error every caller
//   already handles) instead of throwing, and teardown forgets the cancelled flush.
//
// postgres 3.4.9 (porsager/postgres #279, #1192, #1205, #1223):
//   on every new connection the client first looks up the array types (`fetch_types`, on by
//   default) in an async function whose promise ReadyForQuery drops. When PostgreSQL terminates the
//   connection during that lookup (pg_terminate_backend, a restart, a fail-over), the lookup's error
//   (57P01) becomes an unhandled promise rejection, which exits a Node.js process. The error already
//   reaches the query that opened the connection; the fix catches the dropped promise. (The fault
//   harness's worker died of it; Kassa's processes had survived it only through their
//   unhandled-rejection guard, src/process-guards.ts.)
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MARK = '/* kassa-patch: postgres-null-socket */';
const MARK_TYPES = '/* kassa-patch: postgres-fetch-types-rejection */';

const patches = [
  {
    pkg: 'postgres',
    mark: MARK,
    versions: ['3.4.9'],
    files: ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'],
    edits: [
      {
        find: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n',
        replace:
          '  function nextWrite(fn) {\n' +
          `    if (socket === null) { ${MARK}\n` +
          '      chunk = nextWriteTimer = null\n' +
          "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
          '      return false\n' +
          '    }\n' +
          '    const x = socket.write(chunk, fn)\n',
        count: 1,
      },
      {
        find: '    clearImmediate(nextWriteTimer)\n',
        replace: `    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null ${MARK}\n`,
        count: 2,
      },
    ],
  },
  {
    pkg: 'postgres',
    mark: MARK_TYPES,
    versions: ['3.4.9'],
    files: ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'],
    edits: [
      {
        find: '        return fetchArrayTypes()\n',
        // The error reaches the waiting query through errored(); only the dropped promise is caught.
        replace: `        return fetchArrayTypes().catch(() => { /* reported to the waiting query */ }) ${MARK_TYPES}\n`,
        count: 1,
      },
    ],
  },
];

function fail(message) {
  console.error(`patch-dependencies: ${message}`);
  process.exit(1);
}

const require = createRequire(join(root, 'package.json'));
for (const patch of patches) {
  let pkgDir;
  try {
    // The package's exports map hides package.json, so resolve its entry point and walk up.
    pkgDir = dirname(require.resolve(patch.pkg));
  } catch {
    continue; // not installed: nothing to patch
  }
  while (!existsSync(join(pkgDir, 'package.json')) || JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).name !== patch.pkg) {
    const up = dirname(pkgDir);
    if (up === pkgDir) fail(`cannot find ${patch.pkg}'s package.json`);
    pkgDir = up;
  }
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (!patch.versions.includes(version)) {
    fail(
      `${patch.pkg} is ${version}, but the patch was written for ${patch.versions.join(', ')}. ` +
        'Check whether the new version fixes what the patch fixes (see the comments at the top of ' +
        'scripts/patch-dependencies.mjs), then update or remove the patch.',
    );
  }
  for (const file of patch.files) {
    const path = join(pkgDir, file);
    if (!existsSync(path)) continue;
    let text = readFileSync(path, 'utf8');
    if (text.includes(patch.mark)) continue; // already patched
    for (const edit of patch.edits) {
      const found = text.split(edit.find).length - 1;
      if (found !== edit.count) {
        fail(`${patch.pkg}/${file}: expected ${edit.count} occurrence(s) of the text to patch, found ${found}.`);
      }
      text = text.split(edit.find).join(edit.replace);
    }
    writeFileSync(path, text);
    console.log(`patch-dependencies: patched ${patch.pkg}@${version} ${file}`);
  }
}

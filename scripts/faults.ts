/**
 * `npm run test:faults -- --seed N --seeds K [--seconds S] [--no-faults]`: runs K fault-injection
 * scenarios (seeds N, N+1, …; N random when omitted) against real processes and exits non-zero
 * on the first violated invariant, printing the seed to replay it. On a loaded machine, give the
 * processes more time with KASSA_FAULTS_START_MS (start-up) and KASSA_FAULTS_QUIESCE_MS (catch-up
 * after the workload before the invariants must hold).
 */
import { randomInt } from 'node:crypto';
import { runScenario } from '../test/faults/scenario.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const first = arg('seed') !== undefined ? Number(arg('seed')) : randomInt(1, 2 ** 31 - 1);
const seeds = Number(arg('seeds') ?? 1);
const seconds = Number(arg('seconds') ?? 75);
const faults = !process.argv.includes('--no-faults');
let passed = 0;
for (let k = 0; k < seeds; k++) {
  const seed = first + k;
  console.log(`== faults seed=${seed} (${k + 1}/${seeds}) replay: npm run test:faults -- --seed ${seed}`);
  const r = await runScenario({ seed, seconds, faults });
  const st = Object.entries(r.stats).sort().map(([a, b]) => `${a}=${b}`).join(' ');
  console.log(`   stats: ${st}`);
  if (!r.ok) {
    console.log(`FAIL seed=${seed} after ${(r.ms / 1000).toFixed(0)} s; ${r.violations.length} violations (logs in ${r.logDir}):`);
    for (const x of r.violations.slice(0, 50)) console.log(`  - ${x}`);
    console.log(`faults: ${passed}/${seeds} seeds passed before seed ${seed} failed; replay: npm run test:faults -- --seed ${seed}`);
    process.exit(1);
  }
  passed++;
  console.log(`PASS seed=${seed} in ${(r.ms / 1000).toFixed(0)} s`);
}
console.log(`faults: ${passed}/${seeds} seeds passed (first seed ${first})`);
process.exit(0);

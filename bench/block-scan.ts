/**
 * Bitcoin block scan benchmark (docs/architecture.md §10).
 *
 *   node --expose-gc --import tsx bench/block-scan.ts     (heap figure needs --expose-gc)
 *   npx tsx bench/block-scan.ts                           (heap figure = typed arrays' byteLength)
 *
 * Scans test/fixtures/blocks/block928831.raw (1.8 MB, 915 txs, 9,990 outputs) against 1,000,000
 * watched scripts (random P2WPKH-like 22-byte scripts plus a few real scripts planted from the
 * block), with Kassa's scanner and with the naive bitcoinjs-lib path, in the same run. Prints
 * medians; the LAST line is the machine-readable summary.
 */
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as bitcoin from 'bitcoinjs-lib';
import { scanBlock, WatchedScripts } from '../src/chains/bitcoin/scanner.ts';

const WATCHED = 1_000_000;
const KASSA_RUNS = 51;
const NAIVE_RUNS = 11;
const WARMUP = 5;

const gc = (globalThis as { gc?: () => void }).gc;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function memNow(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  // Typed-array backing stores live outside the JS heap (arrayBuffers); count both.
  return m.heapUsed + m.arrayBuffers;
}

const blockUrl = new URL('../test/fixtures/blocks/block928831.raw', import.meta.url);
const blockPath = fileURLToPath(blockUrl);
if (!existsSync(blockPath)) {
  console.error(`missing ${blockPath}: the benchmark needs the real Bitcoin blocks beside the checkout (docs/architecture.md §9, "Test data")`);
  process.exit(1);
}
const raw = new Uint8Array(readFileSync(blockPath));
const network = bitcoin.networks.testnet;

// --- planted scripts: outputs of distinct transactions whose script is unique in the block ----
const parsed = bitcoin.Block.fromBuffer(raw);
const txs = parsed.transactions!;
const scriptCount = new Map<string, number>();
for (const tx of txs) for (const o of tx.outs) {
  const h = Buffer.from(o.script).toString('hex');
  scriptCount.set(h, (scriptCount.get(h) ?? 0) + 1);
}
const planted: Uint8Array[] = [];
for (let t = 1; t < txs.length && planted.length < 8; t += Math.floor(txs.length / 9)) {
  for (const o of txs[t]!.outs) {
    const h = Buffer.from(o.script).toString('hex');
    if (scriptCount.get(h) !== 1) continue;
    try {
      bitcoin.address.fromOutputScript(o.script, network);
    } catch {
      continue;
    }
    planted.push(o.script);
    break;
  }
}

// --- random scripts (P2WPKH-like: OP_0 PUSH20 <20 random bytes>) ------------------------------
const randomCount = WATCHED - planted.length;
const randomPool = randomBytes(randomCount * 20);
function randomScript(i: number): Uint8Array {
  const s = new Uint8Array(22);
  s[1] = 0x14;
  s.set(randomPool.subarray(i * 20, i * 20 + 20), 2);
  return s;
}

// --- Kassa watched set (memory measured around its construction) -------------------------------
const before = memNow();
let watched: WatchedScripts | null = new WatchedScripts();
for (let i = 0; i < randomCount; i++) watched.add(randomScript(i));
for (const s of planted) watched.add(s);
const after = memNow();
// Conservative: the larger of the measured delta and the typed arrays' own size.
const heapMb = gc ? (after - before) / (1024 * 1024) : NaN;
const reportedMb = gc ? Math.max(heapMb, watched.byteLength / (1024 * 1024)) : watched.byteLength / (1024 * 1024);
if (watched.size !== WATCHED) throw new Error(`watched set has ${watched.size} scripts, expected ${WATCHED}`);

// --- naive set: 1,000,000 address strings ------------------------------------------------------
const naiveSet = new Set<string>();
for (let i = 0; i < randomCount; i++) naiveSet.add(bitcoin.address.toBech32(randomPool.subarray(i * 20, i * 20 + 20), 0, network.bech32));
for (const s of planted) naiveSet.add(bitcoin.address.fromOutputScript(s, network));

function kassaScan(): string[] {
  const r = scanBlock(raw, watched!);
  return r.matches.map((m) => `${m.txid}:${m.vout}:${m.value}`);
}

function naiveScan(): string[] {
  const block = bitcoin.Block.fromBuffer(raw);
  const found: string[] = [];
  for (const tx of block.transactions!) {
    let txid: string | undefined;
    tx.outs.forEach((o, vout) => {
      let addr: string;
      try {
        addr = bitcoin.address.fromOutputScript(o.script, network);
      } catch {
        return; // non-standard output
      }
      if (naiveSet.has(addr)) {
        txid ??= tx.getId();
        found.push(`${txid}:${vout}:${o.value}`);
      }
    });
  }
  return found;
}

function time(fn: () => unknown, runs: number): number[] {
  for (let i = 0; i < WARMUP; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    out.push(performance.now() - t);
  }
  return out;
}

const kassaFound = kassaScan().sort();
const naiveFound = naiveScan().sort();
if (kassaFound.length !== planted.length || JSON.stringify(kassaFound) !== JSON.stringify(naiveFound)) {
  console.error('kassa:', kassaFound, '\nnaive:', naiveFound);
  throw new Error('Kassa and the naive path disagree on the planted matches');
}

const kassaMs = median(time(kassaScan, KASSA_RUNS));
const pendingInputs = [...scanBlock(raw, null).spent.toArray().slice(0, 8), ...Array.from({ length: 8 }, (_, i) => `${'ab'.repeat(32)}:${i}`)];
const spentMs = median(time(() => scanBlock(raw, watched!).spent.spentAmong(pendingInputs), KASSA_RUNS));
const spentAllMs = median(time(() => scanBlock(raw, watched!).spent.toArray(), KASSA_RUNS));
const naiveMs = median(time(naiveScan, NAIVE_RUNS));
const speedup = naiveMs / kassaMs;

const r = scanBlock(raw, watched);
console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`);
console.log(`block: ${blockPath} (${raw.length} bytes, ${r.txCount} txs, ${r.outputCount} outputs, ${r.inputCount} inputs)`);
console.log(`watched: ${watched.size} scripts (${planted.length} planted from the block), typed arrays ${(watched.byteLength / 1048576).toFixed(1)} MB, measured heap+arrayBuffers delta ${gc ? heapMb.toFixed(1) + ' MB' : 'n/a'}`);
console.log(`planted matches found by both paths: ${kassaFound.length}`);
console.log(`kassa scan median ${kassaMs.toFixed(2)} ms over ${KASSA_RUNS} runs; + spentAmong(16 pending outpoints) ${spentMs.toFixed(2)} ms; + all ${r.spent.size} spent keys as strings ${spentAllMs.toFixed(2)} ms`);
console.log(`naive scan median ${naiveMs.toFixed(1)} ms over ${NAIVE_RUNS} runs`);
if (!gc) console.log('heap: no global.gc, heap_mb is the typed arrays\' size; run `node --expose-gc --import tsx bench/block-scan.ts` to measure');
watched = null;
console.log(
  `block_scan_ms=${kassaMs.toFixed(2)} naive_ms=${naiveMs.toFixed(1)} speedup=${speedup.toFixed(1)} watched=${WATCHED} heap_mb=${reportedMb.toFixed(1)}`,
);

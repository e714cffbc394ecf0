/* global process, console, URL */
// `npm test`'s runner: every dist/test/**/*.test.js in a random file order (node 20's test runner
// has no shuffle of its own), two files at a time. The seed is printed; TEST_SEED=N repeats an
// order. With --no-skip (CI) a skipped test fails the run: CI installs and sets up everything.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const noSkip = args.includes('--no-skip');
const only = args.filter((a) => !a.startsWith('--'));

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

// mulberry32: a small seeded generator, so that an order can be repeated.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : Math.floor(Math.random() * 2 ** 31);
const rand = rng(seed);
const files = (only.length ? only : testFiles(join(root, 'dist', 'test'))).map((f) => relative(root, f));
for (let i = files.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [files[i], files[j]] = [files[j], files[i]];
}
console.log(`test files in random order, seed ${seed} (TEST_SEED=${seed} npm test repeats it):\n  ${files.join('\n  ')}`);

const tapDir = mkdtempSync(join(tmpdir(), 'ecryptfs-ts-tap-'));
const tap = join(tapDir, 'results.tap');
const reporters = noSkip ? ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`] : [];
const child = spawn(process.execPath, ['--openssl-legacy-provider', '--test', '--test-concurrency=2', ...reporters, ...files], { cwd: root, stdio: 'inherit' });
child.on('exit', (code, signal) => {
  let rc = code ?? 1;
  if (noSkip && rc === 0) {
    const text = readFileSync(tap, 'utf8');
    const skipped = text.split('\n').filter((l) => /^\s*ok \d+ - .*# SKIP/.test(l));
    if (skipped.length > 0) {
      console.error(`\n${skipped.length} test(s) skipped, and CI must skip none (install or set up what they need):\n${skipped.map((l) => l.trim()).join('\n')}`);
      rc = 1;
    }
  }
  rmSync(tapDir, { recursive: true, force: true });
  if (signal) console.error(`test runner killed by ${signal}`);
  process.exit(rc);
});

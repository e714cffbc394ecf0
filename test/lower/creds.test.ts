/** Caller groups come from the calling process itself, never from an exited one whose pid was reused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { groupsOf, processStartTime } from '../../src/lower/creds.js';

const hasPython = spawnSync('python3', ['-c', '0']).status === 0;
const skipRoot = process.getuid?.() !== 0 ? 'needs root (setgroups, /proc/sys/kernel/ns_last_pid)' : !hasPython ? 'needs python3' : false;

/** A python3 process with supplementary groups `groups` and command name `comm`, waiting. */
async function holder(groups: number[], comm: string): Promise<ChildProcess> {
  const code = [
    'import os, sys, ctypes',
    `os.setgroups(${JSON.stringify(groups)})`,
    `ctypes.CDLL(None).prctl(15, ${JSON.stringify(comm)}.encode(), 0, 0, 0)`,
    'sys.stdout.write("ready\\n"); sys.stdout.flush()',
    'sys.stdin.read()',
  ].join('\n');
  const c = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  await once(c.stdout!, 'data');
  return c;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  c.kill('SIGKILL');
  await once(c, 'exit');
}

test('processStartTime reads field 22 after the last ")", whatever the command name holds', { skip: hasPython ? false : 'needs python3' }, async () => {
  const own = processStartTime(process.pid);
  assert.match(own ?? '', /^\d+$/);
  // a name with spaces and parentheses shifts the fields of a naive split
  const c = await holder([], 'x) 1 2 (y');
  try {
    const start = processStartTime(c.pid!);
    assert.match(start ?? '', /^\d+$/);
    assert.ok(BigInt(start!) >= BigInt(own!), 'a child starts after its parent');
  } finally {
    await stop(c);
  }
  assert.equal(processStartTime(c.pid!), undefined, 'an exited process has none');
  assert.equal(processStartTime(0), undefined);
  assert.equal(processStartTime(-1), undefined);
});

test('a pid reused within the cache TTL gets the new process\'s groups, not the exited one\'s', { skip: skipRoot }, async () => {
  const a = await holder([41001], 'etcreds-a');
  const pid = a.pid!;
  assert.deepEqual(groupsOf(pid), [41001]);
  await stop(a);
  assert.deepEqual(groupsOf(pid), [], 'an exited caller has no groups');
  // have the kernel hand the same pid to a new process: ns_last_pid is only a hint that other
  // processes on the machine may race for, so try a few times
  let b: ChildProcess | undefined;
  for (let i = 0; i < 50 && !b; i++) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const c = await holder([41002], 'etcreds-b');
    if (c.pid === pid) b = c;
    else await stop(c);
  }
  assert.ok(b, `the kernel never gave pid ${pid} again`);
  try {
    // the earlier read of A is younger than the TTL: only the start time tells them apart
    assert.deepEqual(groupsOf(pid), [41002]);
  } finally {
    await stop(b);
  }
});

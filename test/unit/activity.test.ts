import test from 'ava';
import { Activity } from '../../src/util/activity.js';

const since = (t0: number) => performance.now() - t0;

test('quiet: at once when no call has run', async (t) => {
  const a = new Activity();
  const t0 = performance.now();
  await a.quiet(50, 1000);
  t.true(since(t0) < 40, `waited ${since(t0).toFixed(1)} ms`);
});

test('quiet: waits for quietMs after the last call ends', async (t) => {
  const a = new Activity();
  a.begin();
  a.end();
  const t0 = performance.now();
  await a.quiet(60, 1000);
  t.true(since(t0) >= 55, `waited only ${since(t0).toFixed(1)} ms`);
});

test('quiet: not while a call is in flight, but no longer than maxMs', async (t) => {
  const a = new Activity();
  a.begin();
  let done = false;
  const t0 = performance.now();
  const waiting = a.quiet(20, 150).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 80));
  t.false(done, 'resolved while a call was in flight');
  await waiting;
  t.true(since(t0) >= 145, `gave up after ${since(t0).toFixed(1)} ms, before maxMs`);
});

test('quiet: resolves at once when its signal aborts, however busy the calls are', async (t) => {
  const a = new Activity();
  a.begin();
  const ac = new AbortController();
  const t0 = performance.now();
  setTimeout(() => ac.abort(), 30);
  await a.quiet(20, 5000, ac.signal);
  t.true(since(t0) < 1000, `resolved ${since(t0).toFixed(1)} ms in, not at the abort`);
  const aborted = AbortSignal.abort();
  const t1 = performance.now();
  await a.quiet(20, 5000, aborted);
  t.true(since(t1) < 40, `an aborted signal waited ${since(t1).toFixed(1)} ms`);
});

test('quiet: a call ending while it waits moves the quiet moment on', async (t) => {
  const a = new Activity();
  a.begin();
  const t0 = performance.now();
  setTimeout(() => a.end(), 50);
  await a.quiet(40, 2000);
  t.true(since(t0) >= 85, `resolved ${since(t0).toFixed(1)} ms in, before the call ended + 40 ms`);
});

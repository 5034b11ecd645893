import { describe, expect, it } from 'vitest';
import { InferenceSchedule } from '../../../src/pipeline/inference-schedule.js';

/** A clock the test moves by hand: the schedule's arithmetic, with no real time involved. */
function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('InferenceSchedule (just-in-time preprocessing for live sources)', () => {
  it('waits for nothing until an inference has been measured, and when the worker is idle', () => {
    const c = clock();
    const s = new InferenceSchedule(c.now);
    expect(s.delayMs()).toBe(0);
    s.sent();
    expect(s.delayMs()).toBe(0); // nothing measured yet: double buffering until then
    c.advance(100);
    s.done(100);
    expect(s.delayMs()).toBe(0); // idle
  });

  it('with one run in the worker, waits until preprocessing would end as the worker frees (minus a margin)', () => {
    const c = clock();
    const s = new InferenceSchedule(c.now, 1);
    s.sent();
    c.advance(160);
    s.done(160);
    s.reading('cam');
    c.advance(12);
    s.prepared('cam');
    s.sent(); // the next run starts now and should take ~160 ms
    expect(s.delayMs()).toBe(160 - 12 - 3);
    c.advance(100);
    expect(s.delayMs()).toBe(60 - 12 - 3);
    c.advance(100);
    expect(s.delayMs()).toBe(0); // already late: read at once
  });

  it('counts runs still queued behind the current one (several cameras), re-anchored on each answer', () => {
    const c = clock();
    const s = new InferenceSchedule(c.now, 1);
    s.sent();
    c.advance(50);
    s.done(50);
    s.reading('cam');
    c.advance(4);
    s.prepared('cam');
    s.sent();
    s.sent();
    expect(s.delayMs()).toBe(100 - 4 - 2);
    c.advance(70); // the first of the two came back late
    s.done(70);
    expect(s.delayMs()).toBe(70 - 4 - 2);
  });

  it('follows a changing inference time through its moving average', () => {
    const c = clock();
    const s = new InferenceSchedule(c.now, 0.5);
    for (const ms of [100, 200]) {
      s.sent();
      c.advance(ms);
      s.done(ms);
    }
    s.sent();
    expect(s.delayMs()).toBe(150 - 0 - 2);
  });

  it('a failed run leaves the queue without moving the inference average; frames no just-in-time reader took (files) teach nothing', () => {
    const c = clock();
    const s = new InferenceSchedule(c.now, 1);
    s.sent();
    c.advance(80);
    s.done(80);
    s.sent();
    c.advance(500);
    s.failed();
    s.prepared('file'); // never woke: ignored
    s.sent();
    expect(s.delayMs()).toBe(80 - 0 - 2);
  });

  it('batching: queued runs cost one inference per batch; several workers: no wait while one is idle', () => {
    const c = clock();
    const batched = new InferenceSchedule(c.now, 1, 4);
    batched.sent();
    c.advance(100);
    batched.done(100);
    for (let i = 0; i < 4; i++) batched.sent(); // one batch of four
    expect(batched.delayMs()).toBe(100 - 0 - 2);
    batched.sent(); // a fifth waits for a second batch
    expect(batched.delayMs()).toBe(200 - 0 - 2);

    const pool = new InferenceSchedule(c.now, 1, 1, 2);
    pool.sent();
    c.advance(100);
    pool.done(100);
    pool.sent();
    expect(pool.delayMs()).toBe(0); // the other worker is idle: read now
    pool.sent();
    expect(pool.delayMs()).toBe(100 - 0 - 2); // both busy: until the first frees
  });
});


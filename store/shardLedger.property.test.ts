// Property: however leasers die, stall past their lease, or report twice, every one of 10,000
// shards is counted done exactly once — with leasers sharing a store, and in separate processes.
import { expect, it } from 'vitest';
import { describeEachStore, runInProcesses } from './testing.ts';

const SHARDS = 10_000;
const ranges = Array.from({ length: SHARDS }, (_, i) => ({ startIndex: i * 10, endIndex: (i + 1) * 10 }));

/**
 * One leaser's loop, as source so the same code runs in this process and in child processes.
 * `store`, `name` and `random` are in scope; prints `counted e/i` for each shard it counted.
 */
const LEASER = `
  async (store, name, random, counted) => {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const LEASE_MS = 150;
    let gen = 0;
    for (;;) {
      const owner = name + 'g' + gen;
      const batch = await store.shards.leaseNext('j', owner, 1 + Math.floor(random() * 8), Date.now(), LEASE_MS);
      if (batch.length === 0) {
        const p = await store.shards.progress('j');
        if (p.queued + p.inFlight === 0) return;
        await sleep(20);
        continue;
      }
      for (const s of batch) {
        const roll = random();
        if (roll < 0.02) {
          // Dies: the rest of the batch is abandoned; half the time its node's leases are released
          // at once (a reported failure), else they expire.
          if (random() < 0.5) await store.shards.release('j', owner);
          gen += 1;
          break;
        }
        if (roll < 0.04) await sleep(LEASE_MS + 50); // stalls past its lease: another may take the shard
        const key = { jobId: 'j', epoch: s.epoch, shardIndex: s.shardIndex };
        if (await store.shards.complete(key, owner, 1)) counted(s.epoch + '/' + s.shardIndex);
        if (roll > 0.97 && (await store.shards.complete(key, owner, 1))) counted(s.epoch + '/' + s.shardIndex);
      }
    }
  }`;

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectEachOnce(counted: string[]): void {
  const seen = new Map<string, number>();
  for (const k of counted) seen.set(k, (seen.get(k) ?? 0) + 1);
  const twice = [...seen].filter(([, n]) => n > 1);
  expect(twice).toEqual([]);
  expect(seen.size).toBe(SHARDS);
}

describeEachStore('shard ledger property', (h) => {
  it('counts every shard done exactly once under 32 concurrent leasers with failures and expiries', async () => {
    const store = await h.open();
    await store.shards.createEpoch('j', 0, ranges);
    const leaser = eval(LEASER) as (s: typeof store, name: string, random: () => number, counted: (k: string) => void) => Promise<void>;
    const counted: string[] = [];
    await Promise.all(Array.from({ length: 32 }, (_, i) => leaser(store, `w${i}`, seeded(i + 1), (k) => counted.push(k))));
    expectEachOnce(counted);
    expect(await store.shards.progress('j')).toMatchObject({ total: SHARDS, done: SHARDS, queued: 0, inFlight: 0 });
  }, 300_000);

  it('counts every shard done exactly once with leasers in 4 processes', async () => {
    const url = await h.freshUrl();
    const store = await h.open({ url });
    await store.shards.createEpoch('j', 0, ranges);
    const script = `
      const leaser = ${LEASER};
      let a = Number(arg.slice(1)) * 7919;
      const random = () => { a = (a * 1103515245 + 12345) % 2147483648; return a / 2147483648; };
      await Promise.all(Array.from({ length: 8 }, (_, i) => leaser(store, arg + 'w' + i, random, (k) => console.log('counted ' + k))));`;
    const outputs = await runInProcesses(url, script, ['p0', 'p1', 'p2', 'p3']);
    expectEachOnce(outputs.flatMap((o) => [...o.matchAll(/^counted (\S+)$/gm)].map((m) => m[1]!)));
    expect(await store.shards.progress('j')).toMatchObject({ done: SHARDS, inFlight: 0 });
  }, 300_000);
});

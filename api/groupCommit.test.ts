// Group commit: requests of a key that arrive while its batch runs go into the next batch, each
// caller gets its own answer, and a failed batch is rerun one request at a time.
import { expect, it } from 'vitest';
import { GroupCommit, type Settled } from './groupCommit.ts';

/** A batch runner whose batches finish when the test says so. */
function gate() {
  const batches: { key: string; items: number[]; finish: (outcomes?: Settled<string>[] | Error) => void }[] = [];
  const commit = new GroupCommit<number, string>(
    (key, items) =>
      new Promise((resolve, reject) => {
        batches.push({
          key,
          items,
          finish: (outcomes) => (outcomes instanceof Error ? reject(outcomes) : resolve(outcomes ?? items.map((i) => ({ ok: true, value: `${key}:${i}` })))),
        });
      }),
    { maxWeight: 10, weight: (i) => i },
  );
  const tick = () => new Promise((r) => setImmediate(r));
  return { commit, batches, tick };
}

it('gathers the requests of one turn into a batch, and those that arrive while it runs into the next', async () => {
  const { commit, batches, tick } = gate();
  const first = [commit.submit('a', 1), commit.submit('a', 2)];
  const other = commit.submit('b', 4);
  expect(batches).toEqual([]);
  await tick();
  expect(batches.map((b) => [b.key, b.items])).toEqual([['a', [1, 2]], ['b', [4]]]);
  const later = [commit.submit('a', 3), commit.submit('a', 5)];
  expect(commit.waiting).toBe(2);
  batches[0]!.finish();
  expect(await Promise.all(first)).toEqual(['a:1', 'a:2']);
  await tick();
  expect(batches[2]).toMatchObject({ key: 'a', items: [3, 5] });
  batches[2]!.finish();
  batches[1]!.finish();
  expect(await Promise.all([...later, other])).toEqual(['a:3', 'a:5', 'b:4']);
  expect(commit.waiting).toBe(0);
});

it('caps a batch by weight but always takes one request', async () => {
  const { commit, batches, tick } = gate();
  const all = [commit.submit('a', 1), commit.submit('a', 6), commit.submit('a', 5), commit.submit('a', 20), commit.submit('a', 2)];
  for (let i = 0; i < 4; i++) {
    await tick();
    batches[i]!.finish();
  }
  await Promise.all(all);
  expect(batches.map((b) => b.items)).toEqual([[1, 6], [5], [20], [2]]);
});

it('answers each caller with its own outcome, errors included', async () => {
  const { commit, batches, tick } = gate();
  const [ok, refused] = [commit.submit('a', 2), commit.submit('a', 3)];
  await tick();
  batches[0]!.finish([{ ok: true, value: 'two' }, { ok: false, error: new Error('three refused') }]);
  expect(await ok).toBe('two');
  await expect(refused).rejects.toThrow('three refused');
});

it('reruns the requests of a failed batch one at a time, so only the failing one fails', async () => {
  const { commit, batches, tick } = gate();
  const rest = [commit.submit('a', 2), commit.submit('a', 3)].map((p) => p.then((v) => v, (e: Error) => e.message));
  await tick();
  expect(batches[0]!.items).toEqual([2, 3]);
  batches[0]!.finish(new Error('deadlock'));
  await tick();
  expect(batches.slice(1).map((b) => b.items)).toEqual([[2], [3]]);
  batches[1]!.finish();
  batches[2]!.finish(new Error('3 breaks the transaction'));
  expect(await Promise.all(rest)).toEqual(['a:2', '3 breaks the transaction']);
  // The key is idle again: the next request opens a batch of its own.
  const next = commit.submit('a', 4);
  await tick();
  expect(batches[3]!.items).toEqual([4]);
  batches[3]!.finish();
  expect(await next).toBe('a:4');
});

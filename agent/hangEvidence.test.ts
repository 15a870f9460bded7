// Hang evidence from trainers behind a wrapper: the stacks come from the Python process behind
// `sh -c`, and nothing that would die of SIGUSR1 gets one.
import { afterEach, describe, expect, it } from 'vitest';
import { processGroupMembers } from '../common/procfs.ts';
import { captureHangEvidence } from './hangEvidence.ts';
import { ProcessGroup } from './processGroup.ts';
import { lineSink, pidAlive } from './testing.ts';
import { waitUntil } from '../test/waits.ts';

/** No py-spy here, whatever is installed: the faulthandler path is what is tested. */
const NO_PY_SPY = '/nonexistent/py-spy';

/** A trainer stuck in `stuck_in_collective`; registers faulthandler on SIGUSR1 when asked to. */
const HUNG_TRAINER = `
import faulthandler, os, signal, sys, time
if os.environ.get("REGISTER") == "1":
    faulthandler.register(signal.SIGUSR1, all_threads=True)
def stuck_in_collective():
    print("ready", flush=True)
    time.sleep(300)
stuck_in_collective()
`;

const groups: ProcessGroup[] = [];
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.stop(0)));
});

/** One trainer per entry: `sh -c "python3 -c <trainer>; exit $?"`, so sh leads and stays. */
function startWrapped(registers: boolean[]) {
  const out = lineSink();
  const err = lineSink();
  const group = ProcessGroup.start({
    command: 'sh',
    args: ['-c', 'python3 -c "$0"; exit $?', HUNG_TRAINER],
    trainers: registers.map((register, i) => ({ localRank: i, rank: i, env: { PATH: process.env.PATH, REGISTER: register ? '1' : '0' } })),
    stdout: out.stream,
    stderr: err.stream,
  });
  groups.push(group);
  return { group, out, err };
}

/** The sh leader and the python behind it, per trainer, once every python is ready. */
async function wrappedTrainers(group: ProcessGroup, out: { lines: () => string[] }, count: number) {
  await waitUntil(() => out.lines().filter((l) => l.endsWith(' ready')).length === count, 'every trainer ready', 20_000);
  return Promise.all(
    group.liveTrainers().map(async (t) => {
      const members = processGroupMembers(t.pid) ?? [];
      const python = members.find((p) => p.comm.startsWith('python'));
      expect(members.find((p) => p.pid === t.pid)?.comm).toBe('sh');
      expect(python, `python behind sh ${t.pid}`).toBeDefined();
      return { localRank: t.localRank, wrapper: t.pid, python: python!.pid };
    }),
  );
}

describe('captureHangEvidence', () => {
  it('dumps the stacks of the python behind `sh -c` with faulthandler, and the wrapper survives', async () => {
    const { group, out } = startWrapped([true, true]);
    const trainers = await wrappedTrainers(group, out, 2);

    const evidence = await captureHangEvidence(group, NO_PY_SPY);

    expect(evidence.stacks).toHaveLength(2);
    for (const t of trainers) {
      const stack = evidence.stacks.find((s) => s.localRank === t.localRank)!;
      expect(stack).toMatchObject({ method: 'faulthandler', pid: t.python });
      expect(stack.stack).toContain('stuck_in_collective');
      // SIGUSR1 went to python, which handles it; sh would have died of it.
      expect(pidAlive(t.wrapper), `sh ${t.wrapper}`).toBe(true);
      expect(pidAlive(t.python), `python ${t.python}`).toBe(true);
      expect(evidence.processTree).toContain(String(t.python));
    }
    expect(group.liveTrainers()).toHaveLength(2);
  });

  it('signals no process that has no SIGUSR1 handler: a python without faulthandler lives on, with no stack', async () => {
    const { group, out } = startWrapped([false, true]);
    const trainers = await wrappedTrainers(group, out, 2);

    const evidence = await captureHangEvidence(group, NO_PY_SPY);

    const bare = evidence.stacks.find((s) => s.localRank === 0)!;
    expect(bare).toMatchObject({ method: 'none', pid: trainers.find((t) => t.localRank === 0)!.python });
    expect(bare.stack).toContain('faulthandler.register');
    expect(evidence.stacks.find((s) => s.localRank === 1)).toMatchObject({ method: 'faulthandler' });
    for (const t of trainers) {
      expect(pidAlive(t.wrapper), `sh ${t.wrapper}`).toBe(true);
      expect(pidAlive(t.python), `python ${t.python}`).toBe(true);
    }
  });
});

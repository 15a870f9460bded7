// A trainer can act only on its own job: a real trainer of job A, on the real stack, tries every
// side door into a running job B — the store and Temporal (no URL, address or operator token to
// use; B's token digest read from the SQLite file is no token), the API with A's own token on
// every route that names a job, the Brain, and B's node-check server — and every attempt fails,
// while A's token still opens A.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import type { NodeCheckState } from '../common/nodeCheckSession.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { jobSpecInput, repoRoot } from './jobFixtures.ts';
import { startTestStack } from './stack.ts';

type Probe = { control: Record<string, number>; attempts: { path: string; outcome: string; refused: boolean }[] };

it('refuses a trainer of one job every way into another job', async () => {
  const stack = await startTestStack('cross job', { ROVER_OPERATOR_TOKEN: 'operator-secret-of-the-cross-job-test' });
  const stopB = path.join(stack.home, 'stop-b');
  const target = path.join(stack.home, 'target.json');
  const out = path.join(stack.home, 'probe.json');
  try {
    await Promise.all([stack.startWorker(), stack.startApi()]);
    const submit = (job: string, args: string[], nodeCheck: 'on' | 'off') => {
      const input = jobSpecInput(stack.home, job, { nodes: 1, nproc: 1 });
      const parsed = parseJobSpec({
        ...input,
        spec: {
          ...input.spec,
          entrypoint: { command: 'python3', args: ['test/trainers/cross_job_probe.py', ...args], workdir: repoRoot },
          diagnosis: { nodeCheck, timeout: '20s' },
        },
      });
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
      return submitJob(stack.client, parsed.spec, { taskQueue: stack.config.temporal.taskQueue });
    };

    // Job B trains until told to stop; its agent passed the node check and keeps its server open.
    const b = await submit('cj-b', ['idle', stopB], 'on');
    const check = await waitUntil(async () => {
      const row = await stack.store.nodeChecks.get('cj-b');
      const state = row?.state as NodeCheckState | undefined;
      return state && Object.keys(state.verdicts).length > 0 ? state.ready['0'] : undefined;
    }, "job B's node check verdict", 90_000);
    writeFileSync(target, JSON.stringify({ job: 'cj-b', check_host: check.host, check_port: check.port, store_file: stack.config.storeUrl.slice('sqlite:'.length) }));

    const a = await submit('cj-a', ['attack', target, out], 'off');
    const resultA = await jobOutcome(a);
    expect(resultA.phase, resultA.reason ?? '').toBe('SUCCEEDED');
    const probe = await waitUntil(() => (existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Probe) : undefined), "the probe's findings");

    expect(probe.control).toEqual({ 'own shards': 200, 'own config': 200 });
    // Every route that names a job was tried (14 on the API, 3 on the Brain), plus the store, the
    // environment and the node-check server.
    expect(probe.attempts.length).toBeGreaterThanOrEqual(3 + 2 + 14 + 3 + 2);
    const opened = probe.attempts.filter((x) => !x.refused);
    expect(opened, JSON.stringify(opened)).toEqual([]);
    for (const x of probe.attempts.filter((p) => p.path.startsWith('API') || p.path.startsWith('Brain') || p.path.startsWith('store'))) {
      expect(x.outcome, x.path).toBe('HTTP 403');
    }

    // B noticed nothing: it still trains, and finishes when told.
    writeFileSync(stopB, '');
    const resultB = await jobOutcome(b);
    expect(resultB.phase, resultB.reason ?? '').toBe('SUCCEEDED');
  } finally {
    writeFileSync(stopB, '');
    await stack.close();
  }
}, 240_000);

// The local backend's launch result: every node of this backend runs on this machine.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { parseJobSpec } from '../../common/spec/index.ts';
import { openStore } from '../../store/index.ts';
import { LocalBackend } from './localBackend.ts';

it("names this machine's hostname as the host of a node it launched", async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'rover-local-host-'));
  const store = await openStore(`sqlite:${path.join(home, 'rover.db')}`);
  try {
    const parsed = parseJobSpec({ metadata: { name: 'here', user: 'ada' }, spec: { nodes: { min: 1 }, entrypoint: { command: 'true' } } });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const key = { jobId: 'here', nodeId: 0, incarnation: 0 };
    await store.nodes.upsertLaunch({ ...key, backend: 'local', status: 'launching' });
    await store.nodes.update(key, { pid: 4242, logPath: path.join(home, 'node-0.log') });
    const current = (await store.nodes.get(key))!;
    // Launched already (a retried activity): nothing is spawned, the answer is the same.
    const result = await new LocalBackend(store, home).ensureNode({ ...key, spec: parsed.spec, resources: parsed.spec.spec.resources, agentEnv: {} }, current);
    expect(result).toEqual({ pid: 4242, logPath: path.join(home, 'node-0.log'), host: os.hostname(), created: false });
  } finally {
    await store.close();
  }
});

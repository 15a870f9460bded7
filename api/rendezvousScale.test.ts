// 500 agents join one rendezvous in a burst, on the real API and store: one round, one world.
import { expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import type { RoundStatus } from '../common/protocol.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { buildApi } from './server.ts';

const AGENTS = 500;
const DEADLINE_MS = 60_000;

describeEachStore('rendezvous at scale', (h) => {
  it(`gives ${AGENTS} agents joining in a burst unique, contiguous ranks and one world, in exactly one round`, async () => {
    const store = await h.open();
    const parsed = parseJobSpec({
      metadata: { name: 'burst', user: 'u' },
      spec: { nodes: { min: AGENTS }, entrypoint: { command: 'true' }, diagnosis: { nodeCheck: 'off' } },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    await store.jobs.create({ id: 'burst', workflowId: 'job-burst', user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
    await store.transaction(async (tx) => {
      for (let nodeId = 0; nodeId < AGENTS; nodeId++) await tx.nodes.upsertLaunch({ jobId: 'burst', nodeId, incarnation: 0, backend: 'local', status: 'launching' });
    });
    // Every agent's request is in flight at once here (inject, no jitter): limits above the burst
    // and its stretches of work, so none is shed with 429 (api/overload.ts; agents would retry it).
    // This test is about the round.
    const config = loadConfig({ ROVER_API_MAX_IN_FLIGHT: String(AGENTS * 4), ROVER_API_MAX_LAG_MS: '600000' });
    const app = await buildApi({ config, store, logger: createLogger('test', 'silent') });
    await app.ready();
    const deadline = Date.now() + DEADLINE_MS;
    // Every request is answered 200: the agent would retry a 5xx, but a burst must not cause one
    // (on MySQL the first joins race to open the round).
    const call = async (method: 'GET' | 'POST', url: string, body?: object) => {
      const res = await app.inject({ method, url: `/v1/jobs/burst/${url}`, payload: body, headers: { authorization: 'Bearer t' } });
      if (res.statusCode !== 200) throw new Error(`${method} ${url}: HTTP ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const agent = async (node: number): Promise<RoundStatus> => {
      const host = `10.0.${node >> 8}.${node & 255}`;
      await call('POST', 'nodes/register', { node, incarnation: 0, pid: 1000 + node, host });
      const { round } = await call('POST', 'rendezvous/join', { node, incarnation: 0, host, freePort: 20_000 + node });
      // Polls until the round is decided, with the agent's backoff shrunk for the test.
      for (let delay = 10; ; delay = Math.min(100, delay * 2)) {
        const status = (await call('GET', `rendezvous/${round}?node=${node}&incarnation=0`)) as RoundStatus;
        if (status.status !== 'open') return status;
        if (Date.now() > deadline) throw new Error(`node ${node}: round ${round} still open after ${DEADLINE_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    };
    const statuses = await Promise.all(Array.from({ length: AGENTS }, (_, node) => agent(node)));

    const closed = statuses.map((s) => {
      if (s.status !== 'closed') throw new Error(`a node got ${JSON.stringify(s)}`);
      return s;
    });
    expect(closed.map((s) => s.groupRank).sort((a, b) => a - b)).toEqual(Array.from({ length: AGENTS }, (_, i) => i));
    const rank0 = closed.find((s) => s.groupRank === 0)!;
    const rank0Node = closed.indexOf(rank0);
    for (const s of closed) {
      expect({ round: s.round, nodes: s.nodes, masterAddr: s.masterAddr, masterPort: s.masterPort }).toEqual({
        round: 1,
        nodes: AGENTS,
        masterAddr: `10.0.${rank0Node >> 8}.${rank0Node & 255}`,
        masterPort: 20_000 + rank0Node,
      });
    }
    expect(await store.nodeEvents.list('burst', { kinds: ['round_opened'] })).toHaveLength(1);
    expect(await store.nodeEvents.list('burst', { kinds: ['round_closed'] })).toHaveLength(1);
    expect(await store.rendezvous.latestRound('burst')).toMatchObject({ round: 1, status: 'closed', nodeCount: AGENTS, memberCount: AGENTS });
    await app.close();
  });
});

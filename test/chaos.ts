// A chaos soak: sharded jobs with flash checkpoints train on a ChaosStack while faults drawn from
// a seed hit it (SIGKILL of stack processes, the MySQL store's server among them, alone or
// together, and planned `rover down --keep-jobs` / up); then every job's accounting is checked.
// Used by test/chaos.e2e.test.ts and bench/chaos.bench.ts; needs no vitest.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { findNodeProcesses } from '../cluster/local/processes.ts';
import { readEventData } from '../common/events.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import type { ChaosPart, ChaosStack } from './chaosStack.ts';
import { jobOutcome, waitUntil } from './waits.ts';
import { repoRoot } from './jobFixtures.ts';
import { mulberry32 } from '../common/shardPlan.ts';

/** A planned restart of the whole stack that leaves the jobs' nodes training. */
export const DOWN_UP = 'down-up';
export type Fault = ChaosPart | typeof DOWN_UP;

export interface SoakOptions {
  seed: number;
  /** Fault points to draw. */
  kills: number;
  jobs: number;
  /** What a fault may hit. */
  faults: Fault[];
  /** Faults the plan must hold at least once (added to a point drawn from the seed when the draw missed them). */
  required?: Fault[];
  /** Samples per job; shards of 20, 2 epochs, 2 nodes of 1 process. */
  samples: number;
  /** Seconds a trainer sleeps per step: long enough that the faults land while the jobs train. */
  stepTime: number;
  /** How long killed parts stay down before their restart, ms (default 0: restarted at once). */
  downMs?: number;
  /** Fault points are drawn uniformly in this range of the fraction of all shards done. */
  window: [number, number];
  log: (line: string) => void;
}

/**
 * A store outage every agent must have met: five heartbeat intervals of the soak's jobs. A store
 * restarted at once is back in a few hundred ms, which can fall between an agent's calls (a held
 * heartbeat does its store work when it arrives), so such a fault need not show as an outage.
 */
const STORE_OUTAGE_SEEN_MS = 1000;

/** The soak's jobs declare a node lost after this long without a heartbeat. */
const HEARTBEAT_TIMEOUT_MS = 30_000;

export interface AppliedFault {
  targets: Fault[];
  /** Fraction of all shards done when it was due. */
  at: number;
  killedAt: number;
  readyAt: number;
  /**
   * Whether agents had an outage to report: no API replica answered meanwhile (all killed, or a
   * planned restart), or the store was held down for STORE_OUTAGE_SEEN_MS or more, so every
   * agent's next call that needs it was answered 5xx.
   */
  cutOff: boolean;
}

export interface SoakResult {
  kills: AppliedFault[];
  jobs: number;
  succeeded: number;
  /** Jobs whose every (epoch, sample) was trained exactly once by the ledger and by the trainers' records. */
  shardsExact: number;
  /** Longest control-plane outage an agent reported (control_plane_outage), seconds. */
  maxPauseS: number;
  /** Faults that cut the agents off (AppliedFault.cutOff), and how many of them a control_plane_outage event covers. */
  outages: { seen: number; explained: number };
  /** node_lost events of all jobs: nodes the faults cost a relaunch (allowed; a figure, not a check). */
  nodesLost: number;
  /** Every broken promise, one line each; empty when the soak passed. */
  problems: string[];
}

const SHARD = 20;
const EPOCHS = 2;

/**
 * The fault plan of a seed: `kills` points (fractions of all shards done in `window`, ascending),
 * each hitting one fault or, one time in four, two or three at once. A `required` fault the draw
 * missed joins a point drawn from the same seed (replacing a planned restart there).
 */
export function planFaults(seed: number, kills: number, faults: Fault[], [low, high]: [number, number], required: Fault[] = []): { at: number; targets: Fault[] }[] {
  const random = mulberry32(seed);
  const pick = () => faults[Math.floor(random() * faults.length)]!;
  const plan = Array.from({ length: kills }, () => {
    const at = low + random() * (high - low);
    const targets = new Set<Fault>([pick()]);
    if (random() < 0.25) for (let n = 1 + Math.floor(random() * 2); n > 0; n--) targets.add(pick());
    // A planned restart already restarts everything.
    return { at, targets: targets.has(DOWN_UP) ? [DOWN_UP as Fault] : [...targets] };
  });
  for (const fault of required) {
    if (kills === 0 || plan.some((p) => p.targets.includes(fault))) continue;
    const point = plan[Math.floor(random() * kills)]!;
    point.targets = point.targets.includes(DOWN_UP) || fault === DOWN_UP ? [fault] : [...point.targets, fault];
  }
  return plan.sort((a, b) => a.at - b.at);
}

function soakSpec(home: string, name: string, o: SoakOptions): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'chaos' },
    spec: {
      nodes: { min: 1, max: 2, initial: 2 },
      nprocPerNode: 1,
      entrypoint: {
        command: 'python3',
        args: [
          'examples/trainer.py', '--step-time', String(o.stepTime), '--connect-timeout', '60', '--checkpoint-every', '4',
          '--samples', String(o.samples), '--loss-threshold', '10', '--record-dir', path.join(home, 'records', name),
        ],
        workdir: repoRoot,
      },
      dataset: { size: o.samples, shardSize: SHARD, epochs: EPOCHS, shuffle: true, seed: 3, maxRetries: 50 },
      // Generous budgets: the soak proves survival, and a relaunch caused by a long outage is allowed.
      faultTolerance: { maxProcessRestarts: 50, maxNodeRelaunches: 20, heartbeatInterval: '200ms', heartbeatTimeout: `${HEARTBEAT_TIMEOUT_MS}ms` },
      rendezvous: { lastCallTimeout: '2s', joinTimeout: '120s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name), keep: 2, flash: true },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

/** Runs the soak on `stack` and checks every job; never throws for a broken promise, it lists it in `problems`. */
export async function runChaosSoak(stack: ChaosStack, o: SoakOptions): Promise<SoakResult> {
  const plan = planFaults(o.seed, o.kills, o.faults, o.window, o.required);
  o.log(`chaos: seed=${o.seed} plan=${plan.map((p) => `${p.targets.join('+')}@${p.at.toFixed(2)}`).join(' ')}`);
  const names = Array.from({ length: o.jobs }, (_, j) => `chaos-${o.seed}-${j}`);
  const handles = [];
  for (const name of names) handles.push(await submitJob(stack.client, soakSpec(stack.home, name, o), { taskQueue: stack.config.temporal.taskQueue }));
  const total = names.length * EPOCHS * Math.ceil(o.samples / SHARD);
  const done = async () => {
    let sum = 0;
    for (const name of names) sum += (await stack.store.shards.progress(name)).done;
    return sum / total;
  };

  const kills: AppliedFault[] = [];
  const apiParts = stack.parts.filter((p) => p.startsWith('api-'));
  for (const { at, targets } of plan) {
    await waitUntil(async () => (await done()) >= at, `${Math.round(at * 100)} % of the shards done`, 900_000, 200);
    // Past the last shard the jobs are ending: what is left of the plan is not applied.
    if ((await done()) >= 1) break;
    const killedAt = Date.now();
    if (targets.includes(DOWN_UP)) await stack.downAndUp();
    else await stack.killAndRestart(targets as ChaosPart[], o.downMs);
    const cutOff = targets.includes(DOWN_UP) || (targets.includes('store') && (o.downMs ?? 0) >= STORE_OUTAGE_SEEN_MS) || apiParts.every((p) => targets.includes(p));
    kills.push({ targets, at, killedAt, readyAt: Date.now(), cutOff });
    o.log(`chaos: fault ${kills.length}/${plan.length} ${targets.join('+')} at ${Math.round(at * 100)} % done, back in ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
  }

  const problems: string[] = [];
  // A fault plan left half applied proves less than it says: the jobs must outlast the plan.
  if (kills.length < plan.length) {
    problems.push(`${plan.length - kills.length} of ${plan.length} planned faults not applied (the jobs finished first: raise the samples per job)`);
  }
  let succeeded = 0;
  let shardsExact = 0;
  const outageEvents: { from: number; to: number }[] = [];
  let nodesLost = 0;
  for (const [j, name] of names.entries()) {
    const result = await jobOutcome(handles[j]!);
    if (result.phase === 'SUCCEEDED') succeeded += 1;
    else problems.push(`${name}: ${result.phase} (${result.reason ?? ''})`);
    // Control-plane faults, planned restarts included, cost no node its relaunch budget; only an
    // outage longer than the heartbeat timeout may (downMs).
    if ((o.downMs ?? 0) < HEARTBEAT_TIMEOUT_MS && result.nodeRelaunches > 0) {
      problems.push(`${name}: ${result.nodeRelaunches} node relaunches spent on control-plane faults`);
    }
    const jobProblems = await checkJob(stack, name, o.samples, result.checkpointStep ?? null);
    if (!jobProblems.some((p) => p.startsWith('shards:'))) shardsExact += 1;
    problems.push(...jobProblems.map((p) => `${name}: ${p}`));
    nodesLost += (await stack.store.nodeEvents.list(name, { kinds: ['node_lost'] })).length;
    const outages = await stack.store.nodeEvents.list(name, { kinds: ['control_plane_outage'] });
    for (const e of outages) {
      const outage = readEventData('control_plane_outage', e.data);
      if (outage) outageEvents.push({ from: e.createdAt - outage.downMs, to: e.createdAt });
      else problems.push(`${name}: event #${e.id} (control_plane_outage) does not fit its schema`);
    }
  }
  // Each fault that cut the agents off must show as an agent's outage overlapping it: a heartbeat
  // every 200 ms meets it, and a long enough store outage reaches the agents as the API's 5xx answers.
  const seen = kills.filter((k) => k.cutOff);
  const explained = seen.filter((k) => outageEvents.some((e) => e.from <= k.readyAt && e.to >= k.killedAt));
  if (explained.length < seen.length) problems.push(`${seen.length - explained.length} of ${seen.length} outages have no control_plane_outage event`);
  const maxPauseS = Math.max(0, ...outageEvents.map((e) => (e.to - e.from) / 1000));
  return { kills, jobs: names.length, succeeded, shardsExact, maxPauseS, outages: { seen: seen.length, explained: explained.length }, nodesLost, problems };
}

/** One line for the benchmark and the test log. */
export function summary(seed: number, r: SoakResult): string {
  return `chaos: seed=${seed} kills=${r.kills.length} jobs=${r.jobs} succeeded=${r.succeeded} shards_exact=${r.shardsExact} max_pause_s=${r.maxPauseS.toFixed(1)} outages_explained=${r.outages.explained}/${r.outages.seen} nodes_lost=${r.nodesLost}`;
}

interface StepRecord {
  round: number;
  step: number;
  epoch: number;
  start: number;
  end: number;
}

/** The trainers' own records (examples/trainer.py --record-dir): one line per rank and step. */
function readRecords(folder: string): StepRecord[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder).flatMap((f) =>
    readFileSync(path.join(folder, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [round, step, epoch, , start, end] = line.split(' ').map(Number);
        return { round: round!, step: step!, epoch: epoch!, start: start!, end: end! };
      }),
  );
}

/** What broke for one finished job: shards, checkpoints, processes. */
async function checkJob(stack: ChaosStack, name: string, samples: number, checkpointStep: number | null): Promise<string[]> {
  const problems: string[] = [];
  const shards = EPOCHS * Math.ceil(samples / SHARD);
  const ledger = await stack.store.shards.progress(name);
  if (ledger.total !== shards || ledger.done !== shards || ledger.inFlight !== 0) {
    problems.push(`shards: the ledger has ${ledger.done}/${ledger.total} done, ${ledger.inFlight} in flight (want ${shards}/${shards}, 0)`);
  }
  // The lineage that produced the final model: per step, the latest round that trained it.
  const records = readRecords(path.join(stack.home, 'records', name));
  const latest = new Map<number, number>();
  for (const r of records) latest.set(r.step, Math.max(latest.get(r.step) ?? 0, r.round));
  const seen = new Map<string, number>();
  for (const r of records.filter((x) => x.round === latest.get(x.step))) {
    for (let i = r.start; i < r.end; i++) seen.set(`${r.epoch}:${i}`, (seen.get(`${r.epoch}:${i}`) ?? 0) + 1);
  }
  const twice = [...seen.values()].filter((n) => n > 1).length;
  if (twice > 0 || seen.size !== EPOCHS * samples) problems.push(`shards: the trainers' records hold ${seen.size}/${EPOCHS * samples} samples, ${twice} more than once`);

  // Checkpoints: each step committed once, in order; every rewind and resume to the latest commit before it.
  const events = await stack.store.nodeEvents.listAfter(name, 0, 100_000);
  let committed = 0;
  /** The steps rounds resumed from, each checked below to be the latest commit when its round began. */
  const roundStarts = new Set<number>();
  for (const e of events) {
    if (e.kind !== 'checkpoint_committed' && e.kind !== 'ledger_rewound') continue;
    const data = readEventData(e.kind, e.data);
    if (!data) {
      problems.push(`event #${e.id} (${e.kind}) does not fit its schema`);
      continue;
    }
    const { step } = data;
    if (e.kind === 'checkpoint_committed') {
      if (step <= committed) problems.push(`checkpoint step ${step} committed after step ${committed}`);
      committed = Math.max(committed, step);
    } else if (e.kind === 'ledger_rewound') {
      if (step !== committed) problems.push(`the ledger rewound to step ${step}, the latest commit was step ${committed}: a committed checkpoint was lost`);
      roundStarts.add(step);
    }
  }
  if (checkpointStep !== committed) problems.push(`the job reports checkpoint step ${checkpointStep}, the events ${committed}`);
  const nodes = await stack.store.nodes.listByJob(name);
  for (const nodeId of new Set(nodes.map((n) => n.nodeId))) {
    const log = nodeLogPath(stack.home, name, nodeId);
    const resumed = existsSync(log) ? [...readFileSync(log, 'utf8').matchAll(/^(?:\[rank \d+\] )?ROVER_RESUME step=(\d+)$/gm)].map((m) => Number(m[1])) : [];
    for (const step of resumed) {
      if (!roundStarts.has(step)) problems.push(`node ${nodeId} resumed from step ${step}, which no round resumed from (each resumes from the latest commit when it begins)`);
    }
  }

  // No process of the job outlives it.
  const alive = () => nodes.flatMap((n) => findNodeProcesses({ jobId: name, nodeId: n.nodeId, incarnation: n.incarnation, home: stack.home }) ?? []);
  await waitUntil(() => alive().length === 0, `${name}'s processes to end`, 60_000, 500).catch(() => {
    problems.push(`processes alive after the end: ${alive().map((p) => p.pid).join(', ')}`);
  });
  return problems;
}

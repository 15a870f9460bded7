// The elastic agent, like torchrun's: register, join a rendezvous round, run the node's training
// processes with the torchrun environment, heartbeat, and rejoin on failure or when asked.
import { createServer } from 'node:net';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import { killedFromOutside } from '../common/failureCulprit.ts';
import { MAX_START_JITTER_MS } from '../common/startJitter.ts';
import type { HeartbeatRequest, HeartbeatResponse, NodeReport, NodeReportResponse, RoundStatus } from '../common/protocol.ts';
import {
  abortableSleep,
  ApiHttpError,
  ROUND_WAIT_MS,
  startDelayMs,
  withRetry,
  type Backoff,
  type ApiClient,
} from './apiClient.ts';
import { captureHangEvidence } from './hangEvidence.ts';
import { checkHook, takePart, type CheckEnd } from './nodeCheck.ts';
import { ProcessGroup, type TrainerExit } from './processGroup.ts';
import { standbyPool, trainerLaunch, type StandbyPool } from './standby.ts';
import type { AgentSettings } from './settings.ts';
import { trainerEnv } from './torchrunEnv.ts';
import { UsageSampler } from './usage.ts';

type ClosedRound = Extract<RoundStatus, { status: 'closed' }>;
type ReportBody = Omit<NodeReport, 'node' | 'incarnation' | 'round' | 'restarts'>;

/** Ends the agent with an exit code; thrown through any wait, or set as the abort reason. */
export class AgentExit extends Error {
  constructor(
    readonly code: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AgentExit';
  }
}

export interface AgentOptions {
  settings: AgentSettings;
  api: ApiClient;
  log: Logger;
  /** Environment the training processes inherit. Default: this process's. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Where trainer output is forwarded. Default: this process's stdout/stderr. */
  output?: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
  backoff?: Backoff;
  /** Extra environment for a group about to start (e.g. ROVER_RESUME_STEP); failures are logged. */
  groupEnv?: (round: Extract<RoundStatus, { status: 'closed' }>) => Promise<Record<string, string>>;
}

const STDERR_TAIL_MAX_CHARS = 16_000;
/** After a process fails, how long the others may take to end on their own before the report. */
const FAILURE_SETTLE_MS = 1500;
/** Against an API that answers a long poll at once (one from before long polls), polls start this often and slow down to the second value. */
const POLL_FIRST_MS = 200;
const POLL_MAX_MS = 1000;
const NODE_CHECK_POLL_MS = 300;
const NODE_CHECK_EXCHANGE_TIMEOUT_MS = 10_000;

export class Agent {
  private readonly settings: AgentSettings;
  private readonly api: ApiClient;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly aborted: Promise<never>;
  private group: ProcessGroup | null = null;
  /** Round of the running group. */
  private groupRound = 0;
  /** Latest round joined; 0 before the first join. */
  private round = 0;
  /** Group restarts so far, for any reason (TORCHELASTIC_RESTART_COUNT). */
  private restarts = 0;
  /** Process failures charged to this node (the API's count); only these count against maxProcessRestarts. */
  private failures = 0;
  private requestRestart: (() => void) | null = null;
  /** Taking part in a node check (its own, or as a peer of another node's): one part at a time. */
  private checking = false;
  /** Hangs (event ids) whose evidence this agent already posted. */
  private hangsCaptured: number[] = [];
  /** Since when (ms) and at which call the API stopped answering; cleared by the next answer. */
  private cutOff: { since: number; failedCall: string; lastError: string } | undefined;
  private stopping: Promise<void> = Promise.resolve();
  /** Warm standby processes for spec.entrypoint.preload (agent/standby.ts); none without it. */
  private standbys: StandbyPool | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.settings = opts.settings;
    this.api = opts.api;
    this.log = opts.log;
    const signal = this.abort.signal;
    this.aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    this.aborted.catch(() => {});
  }

  /** Stop the training processes and make run() resolve 128 + the signal's number. */
  terminate(signal: NodeJS.Signals): void {
    this.finish(new AgentExit(128 + (constants.signals[signal] ?? 15), `received ${signal}`));
  }

  /** Runs until the node succeeded (0), failed (1), was stopped (0) or terminated (128+n). */
  async run(): Promise<number> {
    let heartbeats: Promise<void> = Promise.resolve();
    let exit: AgentExit;
    try {
      const { node, incarnation, host } = this.settings;
      // Agents of a job start together: spread their first requests (see startJitterMs).
      await abortableSleep(startDelayMs(this.settings.startJitterMs ?? MAX_START_JITTER_MS), this.abort.signal);
      await this.call('register', (signal) => this.api.register({ node, incarnation, pid: process.pid, host }, signal));
      this.log.info({ host }, 'registered');
      heartbeats = this.heartbeatLoop();
      await this.nodeCheck();
      // Standbys import the preload modules while the node waits for its first round (after the
      // node check, whose timings their imports would skew).
      this.standbys = standbyPool(this.settings, this.opts.baseEnv ?? process.env, this.log, (data) =>
        void this.call('report a standby failure', (signal) => this.api.postEvent?.({ node, incarnation, kind: 'standby_failed', data: { ...data } }, signal) ?? Promise.resolve()).catch(() => {}),
      );
      exit = await this.loop();
    } catch (err) {
      exit = err instanceof AgentExit ? err : new AgentExit(1, `agent error: ${(err as Error).stack ?? String(err)}`);
    }
    await this.stopGroup();
    await this.standbys?.close();
    this.finish(exit);
    await heartbeats;
    this.log[exit.code === 1 ? 'error' : 'info']({ exitCode: exit.code }, exit.message);
    return exit.code;
  }

  /** Pre-flight node check before the first rendezvous (agent/nodeCheck.ts); a held node waits to be removed. */
  private async nodeCheck(): Promise<void> {
    const poll = this.api.nodeCheck?.bind(this.api);
    if (!poll) return;
    this.checking = true;
    let end: CheckEnd;
    try {
      end = await this.takePartInCheck(poll);
    } finally {
      this.checking = false;
    }
    if (end.action === 'skip') return;
    this.log[end.verdict === 'ok' ? 'info' : 'warn']({ verdict: end.verdict, hold: end.hold }, 'node check done');
    if (!end.hold) return;
    // Faulty or an excluded straggler: the job workflow removes this incarnation.
    for (;;) await abortableSleep(60_000, this.abort.signal);
  }

  /**
   * The heartbeat reply says a check round needs this node, which passed, as a peer (a relaunched
   * node's session): take part, beside training, until the API answers done. Once at a time.
   */
  private servePeers(): void {
    const poll = this.api.nodeCheck?.bind(this.api);
    if (!poll || this.checking) return;
    this.checking = true;
    this.log.info('node check: a session needs this node as a peer');
    this.takePartInCheck(poll)
      .then(() => this.log.info('node check: no longer needed as a peer'))
      .catch((err: unknown) => {
        // A refusal or failure here must not end the node: its heartbeats handle a job that is gone.
        if (!this.abort.signal.aborted) this.log.warn({ err: String(err) }, 'node check: stopped serving as a peer');
      })
      .finally(() => (this.checking = false));
  }

  private takePartInCheck(poll: NonNullable<ApiClient['nodeCheck']>): Promise<CheckEnd> {
    const { node, incarnation, host } = this.settings;
    return takePart({
      node,
      incarnation,
      host,
      poll: (req) => this.call('node check', (signal) => poll(req, signal)),
      wait: (ms) => abortableSleep(ms, this.abort.signal),
      pollMs: NODE_CHECK_POLL_MS,
      exchangeTimeoutMs: NODE_CHECK_EXCHANGE_TIMEOUT_MS,
      hook: checkHook(process.env, node, incarnation),
      onRound: (round, peers, r) => this.log.info({ round, peers, ...r }, 'node check round'),
    });
  }

  private async loop(): Promise<AgentExit> {
    for (;;) {
      const closed = await this.rendezvous();
      const exit = await this.runGroup(closed);
      if (exit) return exit;
    }
  }

  /** Joins rounds until one closes with this node in it. */
  private async rendezvous(): Promise<ClosedRound> {
    const { node, incarnation, host } = this.settings;
    for (;;) {
      const freePort = await findFreePort();
      const { round } = await this.call('join', (signal) =>
        this.api.join({ node, incarnation, host, freePort }, signal),
      );
      this.round = round;
      this.log.info({ round, freePort }, 'joined rendezvous');
      const status = await this.waitForRound(round);
      if (status.status === 'closed') return status;
      if (status.status === 'failed') throw new AgentExit(1, `rendezvous failed: ${status.reason}`);
      this.log.info({ round }, 'excluded from the round (world cut to a multiple of the node unit); rejoining');
      // The API keeps answering `excluded` until a newer round opens: do not hammer it.
      await abortableSleep(POLL_MAX_MS, this.abort.signal);
    }
  }

  private async waitForRound(round: number): Promise<Exclude<RoundStatus, { status: 'open' }>> {
    const ref = { node: this.settings.node, incarnation: this.settings.incarnation };
    let delay = POLL_FIRST_MS;
    for (;;) {
      const asked = Date.now();
      const status = await this.call('rendezvous poll', (signal) => this.api.roundStatus(round, ref, signal, ROUND_WAIT_MS));
      if (status.status !== 'open') return status;
      // 'open' after the wait: ask again at once. Sooner, the API did not hold the request (one
      // from before long polls, or one shutting down): back off as a plain poll would.
      if (Date.now() - asked >= ROUND_WAIT_MS / 2) continue;
      await abortableSleep(delay, this.abort.signal);
      delay = Math.min(POLL_MAX_MS, Math.round(delay * 1.5));
    }
  }

  /** Runs one group to its end; returns an exit, or undefined to rejoin. */
  private async runGroup(closed: ClosedRound): Promise<AgentExit | undefined> {
    const { nprocPerNode } = this.settings;
    const extraEnv = await (this.opts.groupEnv?.(closed) ?? Promise.resolve({})).catch((err: unknown) => {
      this.log.warn({ err }, 'could not prepare the group environment; trainers will ask the API themselves');
      return {};
    });
    const trainers = Array.from({ length: nprocPerNode }, (_, localRank) => ({
      localRank,
      rank: closed.groupRank * nprocPerNode + localRank,
      env: { ...trainerEnv(this.settings, closed, localRank, this.opts.baseEnv ?? process.env), ...extraEnv },
    }));
    const restartRequested = new Promise<'restart'>((resolve) => (this.requestRestart = () => resolve('restart')));
    // The previous group's processes were told to stop when its round ended, and the node joined
    // this round meanwhile; they must be gone before new ones start (ports, GPU memory, shm).
    await this.stopping;
    this.group = ProcessGroup.start({
      ...trainerLaunch(this.settings),
      standbys: this.standbys,
      trainers,
      shutdownGraceMs: this.settings.shutdownGraceMs,
      ...this.opts.output,
    });
    this.groupRound = closed.round;
    const { round, groupRank, nodes, masterAddr, masterPort } = closed;
    const pids = this.group.livePids().map((p) => p.pid);
    const warm = this.group.warmRanks();
    this.log.info({ round, groupRank, nodes, masterAddr, masterPort, restarts: this.restarts, pids, ...(warm.length && { warm }) }, 'started trainers');

    const outcome = await Promise.race([this.group.outcome, restartRequested, this.aborted]);
    if (outcome === 'restart') {
      this.requestRestart = null;
      // Not awaited: the node joins the next round while its processes end (the next group waits).
      this.log.info({ round }, 'the API asked for a restart: stopping trainers and rejoining');
      void this.stopGroup();
      this.restarts++;
      return undefined;
    }
    if (outcome.kind === 'succeeded') {
      this.requestRestart = null;
      // The last step the processes printed: later than the last heartbeat's.
      const step = this.group.latestStep();
      this.group = null;
      await this.report({ kind: 'node_succeeded', ...(step !== null && { step }) });
      return new AgentExit(0, 'all training processes succeeded');
    }
    if (outcome.kind === 'stopped') throw new Error('process group stopped by someone else');
    const { failure, allProcessesAlike } = await this.rootCause(outcome.failure, restartRequested);
    this.requestRestart = null;
    return this.onProcessFailure(failure, allProcessesAlike);
  }

  /**
   * The failure to report, with whether every process failed alike. A process killed from outside
   * (SIGKILL by the OOM killer, a preemption) is the culprit over peers that exited with a
   * traceback after it, and is reported at once; otherwise a process that died with a traceback
   * explains the others (peers exit on a lost connection first, often before the culprit
   * finished printing), so the others get FAILURE_SETTLE_MS to end first — unless the API
   * announces a newer round meanwhile (`newerRound`): another node's failure opened it, so the
   * culprit is not here and the wait would only hold up the restart.
   */
  private async rootCause(first: TrainerExit, newerRound: Promise<unknown>): Promise<{ failure: TrainerExit; allProcessesAlike: boolean }> {
    if (!this.group) return { failure: first, allProcessesAlike: false };
    const failures = killedFromOutside(first) ? [first] : await this.group.failuresWithin(FAILURE_SETTLE_MS, newerRound);
    const failure =
      failures.find(killedFromOutside) ?? failures.find((f) => f.stderrTail.includes('Traceback (most recent call last):')) ?? first;
    const signature = (f: TrainerExit) => `${f.exitCode} ${f.signal} ${f.stderrTail.trimEnd().split('\n').at(-1) ?? ''}`;
    const allProcessesAlike = failures.length === this.settings.nprocPerNode && failures.every((f) => signature(f) === signature(failure));
    return { failure, allProcessesAlike };
  }

  private async onProcessFailure(failure: TrainerExit, allProcessesAlike: boolean): Promise<AgentExit | undefined> {
    const what = describeExit(failure);
    this.log.error(
      { localRank: failure.localRank, rank: failure.rank, exitCode: failure.exitCode, signal: failure.signal },
      `training process ${what}; stopping the others`,
    );
    const { localRank, exitCode, signal, exitedAt, step } = failure;
    const stderrTail = failure.stderrTail.slice(-STDERR_TAIL_MAX_CHARS);
    // Not awaited: the node rejoins while the others end (the next group waits for them).
    void this.stopGroup();
    // The failed process's own step lets the API tell a bug that repeats at the same step from one that moves on.
    const judged = await this.report({ kind: 'process_failed', localRank, exitCode, signal, stderrTail, allProcessesAlike, exitedAt, ...(step === null ? {} : { step }) });
    // The API charges only a round's culprit to its node's budget, not the victims of another node's failure.
    this.failures = judged.failures ?? this.failures + 1;
    if (judged.charged === false) this.log.info({ failures: this.failures }, 'the failure was a consequence of another node\'s failure: not counted');
    const max = this.settings.maxProcessRestarts;
    if (this.failures > max) {
      const reason = `${what}; no process restarts left (${this.failures} failures, max restarts ${max})`;
      await this.report({ kind: 'node_failed', localRank, exitCode, signal, reason });
      return new AgentExit(1, `node failed: ${reason}`);
    }
    this.restarts++;
    this.log.info({ failures: this.failures, maxRestarts: max }, 'rejoining after a process failure');
    return undefined;
  }

  /** Heartbeats until the agent ends; turns the API's replies into restarts and stops. */
  private async heartbeatLoop(): Promise<void> {
    const signal = this.abort.signal;
    const sampler = new UsageSampler();
    const interval = this.settings.heartbeatIntervalMs;
    try {
      let pause = interval;
      for (;;) {
        await abortableSleep(pause, signal);
        const sent = Date.now();
        // Never give up while trainers run: an API outage must not stop training. Held by the
        // API up to one interval (a long poll), so a newer round is heard of when it opens.
        const reply = await this.call('heartbeat', async (s) => this.api.heartbeat({ ...(await this.heartbeat(sampler)), waitMs: interval }, s));
        if (reply.action !== 'stop' && reply.captureStacks !== undefined) await this.captureEvidence(reply.captureStacks);
        if (reply.action !== 'stop' && reply.nodeCheck) this.servePeers();
        this.onHeartbeatReply(reply);
        // One beat per interval: an answer sooner (a newer round, stacks wanted, an API that does
        // not hold heartbeats) waits out the rest of it.
        pause = Math.max(0, interval - (Date.now() - sent));
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof AgentExit && err.cause instanceof ApiHttpError && [404, 410].includes(err.cause.status)) {
        this.finish(new AgentExit(0, `stopping: the API no longer knows this job or node (${err.cause.message})`));
      } else {
        this.finish(err instanceof AgentExit ? err : new AgentExit(1, `heartbeat loop failed: ${String(err)}`));
      }
    }
  }

  private async heartbeat(sampler: UsageSampler): Promise<HeartbeatRequest> {
    const live = this.group?.livePids() ?? [];
    const usage = await sampler.sample(live.map((p) => p.pid));
    const processes = live.flatMap(({ localRank, pid }) => {
      const u = usage.get(pid);
      return u ? [{ localRank, pid, ...u }] : [];
    });
    const { node, incarnation } = this.settings;
    const checkpointing = this.group?.checkpointing() ?? false;
    const computeSeconds = this.group?.latestComputeSeconds() ?? null;
    return {
      node,
      incarnation,
      round: this.round,
      step: this.group?.latestStep() ?? null,
      processes,
      ...(checkpointing && { checkpointing }),
      ...(computeSeconds !== null && { computeSeconds }),
    };
  }

  /** The API suspects a hang: post each process's stacks, the process tree and log tails, once per hang. */
  private async captureEvidence(hang: number): Promise<void> {
    if (this.hangsCaptured.includes(hang) || !this.group) return;
    this.hangsCaptured = [...this.hangsCaptured.slice(-9), hang];
    const { node, incarnation } = this.settings;
    try {
      const evidence = await captureHangEvidence(this.group);
      this.log.warn({ hang, processes: evidence.stacks.length, methods: evidence.stacks.map((s) => s.method) }, 'hang suspected: posting stacks');
      for (const [i, s] of evidence.stacks.entries()) {
        const data = { hang, method: s.method, pid: s.pid, localRank: s.localRank, stack: s.stack, logTail: s.logTail, ...(i === 0 && { processTree: evidence.processTree }) };
        await this.call('post stack dump', (signal) => this.api.postEvent?.({ node, incarnation, kind: 'stack_dump', rank: s.rank, data }, signal) ?? Promise.resolve());
      }
    } catch (err) {
      if (err instanceof AgentExit) throw err;
      this.log.error({ hang, err: String(err) }, 'could not capture hang evidence');
    }
  }

  private onHeartbeatReply(reply: HeartbeatResponse): void {
    if (reply.action === 'stop') {
      this.finish(new AgentExit(0, `stopped by the API: ${reply.reason}`));
    } else if (reply.action === 'restart' && this.group && reply.round > this.groupRound) {
      this.log.info({ round: this.groupRound, newRound: reply.round }, 'the API opened a new round');
      this.requestRestart?.();
    }
  }

  private async report(body: ReportBody): Promise<NodeReportResponse> {
    const { node, incarnation } = this.settings;
    const full: NodeReport = { node, incarnation, round: this.groupRound, restarts: this.restarts, ...body };
    const answer = await this.call(`report ${body.kind}`, (signal) => this.api.report(full, signal));
    this.log.info({ kind: body.kind, round: this.groupRound }, 'reported');
    return answer;
  }

  /** One API call, retried while the API is unreachable or failing; a refusal ends the agent. */
  private async call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = this.abort.signal;
    let attemptStarted = 0;
    let answer: T;
    try {
      answer = await withRetry(
        () => {
          attemptStarted = Date.now();
          return fn(signal);
        },
        {
          signal,
          backoff: this.opts.backoff,
          onRetry: (err, attempt, delayMs) => {
            const lastError = describeError(err);
            // A 429 is an answer (the API sheds load; the delay honours its Retry-After), not an outage.
            if (err instanceof ApiHttpError && err.status === 429) {
              this.log.info({ attempt, delayMs }, `${what}: the API is busy; retrying`);
              return;
            }
            this.cutOff = { since: this.cutOff?.since ?? attemptStarted, failedCall: this.cutOff?.failedCall ?? what, lastError };
            this.log.warn({ attempt, delayMs, err: lastError }, `${what} failed; retrying`);
          },
        },
      );
    } catch (err) {
      if (signal.aborted || !(err instanceof ApiHttpError)) throw err;
      throw new AgentExit(1, `the API refused ${what}: ${err.message}${refusalHint(err.status)}`, { cause: err });
    }
    if (this.cutOff) await this.reportOutage(this.cutOff);
    return answer;
  }

  /**
   * The API answers again after failing: a control_plane_outage event says for how long this
   * node was cut off, so a pause in its training is explained rather than silent. Any call's
   * answer ends the outage, whichever call first failed; the first to see it reports it, once.
   */
  private async reportOutage(outage: NonNullable<Agent['cutOff']>): Promise<void> {
    this.cutOff = undefined;
    const { node, incarnation } = this.settings;
    const data = { downMs: Date.now() - outage.since, failedCall: outage.failedCall, lastError: outage.lastError };
    this.log.warn(data, 'the API answers again after an outage');
    try {
      await this.call('report the outage', (signal) => this.api.postEvent?.({ node, incarnation, kind: 'control_plane_outage', data }, signal) ?? Promise.resolve());
    } catch (err) {
      // An API that refuses the event (an older API) must not end the node; the log keeps it.
      if (!(err instanceof AgentExit && err.cause instanceof ApiHttpError)) throw err;
      this.log.error({ err: err.message }, 'could not report the outage');
    }
  }

  /** Stops the running group; also waits for a stop already under way, so no trainer outlives run(). */
  private stopGroup(): Promise<void> {
    const group = this.group;
    this.group = null;
    if (group) {
      this.log.info({ round: this.groupRound, graceMs: this.settings.shutdownGraceMs }, 'stopping training processes');
      this.stopping = Promise.all([this.stopping, group.stop(this.settings.shutdownGraceMs)]).then(() => {});
    }
    return this.stopping;
  }

  private finish(exit: AgentExit): void {
    if (!this.abort.signal.aborted) this.abort.abort(exit);
  }
}

function refusalHint(status: number): string {
  if (status === 401 || status === 403) return ' (is ROVER_TOKEN the job token?)';
  if (status === 404 || status === 410) return ' (the job or node no longer exists)';
  return '';
}

/** The message, plus the system error behind a failed fetch (ECONNREFUSED, ENOTFOUND, …). */
function describeError(err: unknown): string {
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === 'string' ? `${String(err)} (${code})` : String(err);
}

function describeExit(exit: TrainerExit): string {
  const who = `local rank ${exit.localRank} (rank ${exit.rank})`;
  if (exit.signal) return `${who} was killed by ${exit.signal}`;
  if (exit.exitCode === null) return `${who} could not start`;
  return `${who} exited with code ${exit.exitCode}`;
}

/** A TCP port free on this host right now, offered as MASTER_PORT should this node get rank 0. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

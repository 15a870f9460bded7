// Local backend: a node is an agent process on this machine, detached in its own process group
// so it outlives a crash of the Rover worker. Pid and log path are recorded in the store. The
// agent's trainers lead process groups of their own (agent/processGroup.ts), so stopping a node
// is more than stopping the agent's group: see stopLocalNode.
import { appendFile, mkdir, rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Store, Node } from '../../store/index.ts';
import { nodeShmDir } from '../../common/flashShm.ts';
import { localAgentBaseEnv } from '../../common/processEnv.ts';
import type { ClusterBackend, DeadNode, LaunchResult, NodeLaunch, PendingReason } from '../types.ts';
import { isAlive, LOCAL_STACK_VAR, localStackId, roverEntrypoint, spawnDetached, stopLocalNode } from './processes.ts';

export function nodeLogPath(home: string, jobId: string, nodeId: number): string {
  return path.join(home, 'logs', jobId, `node-${nodeId}.log`);
}

/**
 * The line that opens each incarnation's output in a node's log file, which every run and
 * incarnation of the node appends to: `rover logs` splits the file at these lines. `run` is when
 * the job's run was created (the store's job row), which tells reruns under one name apart.
 */
export function logHeader(h: { run: number; nodeId: number; incarnation: number; launchedAt: number }): string {
  return `=== rover run ${new Date(h.run).toISOString()} · node ${h.nodeId} · incarnation ${h.incarnation} · launched ${new Date(h.launchedAt).toISOString()} ===\n`;
}

/** Parses a logHeader line (without its newline); undefined for any other line. */
export function parseLogHeader(line: string): { run: number; nodeId: number; incarnation: number; launchedAt: number } | undefined {
  const m = /^=== rover run (\S+) · node (\d+) · incarnation (\d+) · launched (\S+) ===$/.exec(line);
  if (!m) return undefined;
  return { run: Date.parse(m[1]!), nodeId: Number(m[2]), incarnation: Number(m[3]), launchedAt: Date.parse(m[4]!) };
}

export class LocalBackend implements ClusterBackend {
  readonly name = 'local' as const;

  constructor(
    private readonly store: Store,
    private readonly home: string,
  ) {}

  async ensureNode(launch: NodeLaunch, current: Node): Promise<LaunchResult> {
    if (current.pid !== null) return { pid: current.pid, logPath: current.logPath, host: hostname(), created: false };
    const logPath = nodeLogPath(this.home, launch.jobId, launch.nodeId);
    const job = await this.store.jobs.get(launch.jobId);
    await mkdir(path.dirname(logPath), { recursive: true });
    await appendFile(logPath, logHeader({ run: job?.createdAt ?? 0, nodeId: launch.nodeId, incarnation: launch.incarnation, launchedAt: Date.now() }));
    const agent = roverEntrypoint('agent/main.ts');
    const { pid } = spawnDetached(agent.command, agent.args, {
      // The agent runs the trainers under this memory limit (prlimit; agent/memoryLimit.ts).
      env: {
        // An allow-list, never the worker's whole environment: that holds the store URL, the
        // Temporal address and the operator token, none of which an agent or trainer may see.
        ...localAgentBaseEnv(process.env),
        ...launch.agentEnv,
        ROVER_MEMORY_LIMIT_BYTES: String(launch.resources.memory),
        // Marks the node's processes as this stack's when deleteNode looks for them by environment.
        [LOCAL_STACK_VAR]: localStackId(this.home),
      },
      cwd: launch.spec.spec.entrypoint.workdir,
      logFile: logPath,
    });
    return { pid, logPath, host: hostname(), created: true, launched: { pid, logPath } };
  }

  /**
   * `graceMs` is the agent's own SIGTERM → SIGKILL grace for its trainers (both come from
   * ROVER_SHUTDOWN_GRACE_MS); the agent gets AGENT_STOP_MARGIN_MS more, so its orderly stop ends
   * before this SIGKILLs the agent and every process of the node still running, orphans too.
   */
  async deleteNode(node: Node, graceMs: number): Promise<void> {
    const identity = { jobId: node.jobId, nodeId: node.nodeId, incarnation: node.incarnation, home: this.home };
    await stopLocalNode(identity, node.pid, graceMs);
    // The node's shared memory goes with it, as a deleted pod's does: a relaunched node starts
    // without the dead agent's flash buffers and resumes from storage, as on every other backend.
    const shm = nodeShmDir(node.jobId, node.nodeId);
    await rm(shm, { recursive: true, force: true });
    await rmdir(path.dirname(shm)).catch(() => undefined); // the job's folder, once no other node uses it
  }

  /** All the local backend knows: the agent runs (its log may say why it cannot reach the API) or has not started. */
  async describePending(nodes: Node[]): Promise<PendingReason[]> {
    return nodes.map((node) => ({
      node,
      reason:
        node.pid === null
          ? 'agent process not started yet'
          : `agent process ${node.pid} runs but has not registered with the Rover API yet${node.logPath ? ` (its log: ${node.logPath})` : ''}`,
    }));
  }

  async findDeadNodes(nodes: Node[]): Promise<DeadNode[]> {
    return nodes
      .filter((n) => n.pid !== null && !isAlive(n.pid))
      .map((node) => ({ node, reason: `agent process ${node.pid} is gone` }));
  }
}

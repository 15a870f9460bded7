// The ElasticJob spec (zod). Pure: values that depend on the caller's environment (user,
// checkpoint folder, working directory) are filled in by resolveJobSpec in resolve.ts.
// Every object is strict, so a misspelt key is an error naming it. Defaults are listed in
// docs/spec-reference.md; keep that table in step (a test checks every field appears there).
import { z } from 'zod';
import { entrypoint } from './entrypoint.ts';
import { LIMITS, cpu, duration, filePath, int, jobName, labels, list, map, memory, requiredSection, str } from './fields.ts';
import { describeValue } from './errors.ts';
import { formatDuration } from './units.ts';
import { HANG_ACTIONS } from '../diagnosis.ts';
import { FAILURE_CLASSES } from '../failureRules.ts';

export const API_VERSION = 'rover.dev/v1';
export const KIND = 'ElasticJob';
/** Cluster backends, in the order they are documented. */
export const BACKENDS = ['local', 'kubernetes', 'ray'] as const;
export const DEFAULT_RAY_ADDRESS = 'http://127.0.0.1:8265';
const metadata = requiredSection(
  {
    name: jobName.describe('Job name, unique among running jobs; a DNS-1123 label of at most 53 characters.'),
    user: str(253).min(1).optional().describe('Owner of the job. Default: $USER, else "anonymous".'),
    group: str(253).min(1).optional().describe('Team or project; the Brain matches configurations on it.'),
    labels: labels.describe('Free-form string labels, Kubernetes syntax; copied onto pods.'),
  },
  'it needs at least the job name, e.g. metadata: {name: my-job}',
);

const nodeCount = int(1, LIMITS.nodes);

const nodes = z
  .strictObject({
    min: nodeCount.default(1).describe('Fewest nodes the job runs with; below this it waits, then fails.'),
    max: nodeCount.optional().describe('Most nodes the job may scale to. Default: min.'),
    initial: nodeCount.optional().describe('Nodes launched at start, within [min, max]. Default: min.'),
    unit: nodeCount.default(1).describe('World size moves in steps of this many nodes; min, max, initial are multiples of it.'),
  })
  .superRefine((n, ctx) => {
    const max = n.max ?? n.min;
    if (n.min > max) ctx.addIssue({ code: 'custom', path: ['min'], message: `must be ≤ spec.nodes.max (got ${n.min} > ${max})` });
    else if (n.initial !== undefined && (n.initial < n.min || n.initial > max)) {
      ctx.addIssue({ code: 'custom', path: ['initial'], message: `must be between spec.nodes.min and spec.nodes.max (got ${n.initial}, allowed ${n.min}..${max})` });
    }
    for (const key of ['min', 'max', 'initial'] as const) {
      const value = n[key];
      if (value !== undefined && value % n.unit !== 0) {
        ctx.addIssue({ code: 'custom', path: [key], message: `must be a multiple of spec.nodes.unit (got ${value}, unit ${n.unit})` });
      }
    }
  })
  .transform((n) => ({ min: n.min, max: n.max ?? n.min, initial: n.initial ?? n.min, unit: n.unit }));

const resources = z.strictObject({
  cpu: cpu.prefault(1).describe('CPU cores per node: a number or millicores like "500m".'),
  memory: memory.prefault('2Gi').describe('Memory per node: bytes or a quantity like "512Mi", "2Gi".'),
  gpu: int(0, 1024).default(0).describe('GPUs per node.'),
  oomFactor: z.number().min(1).max(100).optional().describe("After an OOM while the Brain does not answer, the job master multiplies the node's memory by this (default 2, the Brain's default)."),
  oomMemoryCap: memory.optional().describe('…but never above this memory per node (default 64Gi, the Brain\'s default).'),
});

/** A trillion samples; and at most a million shards per epoch. */
const MAX_SAMPLES = 1e12;
/** A trillion steps: past any real run, still exact in a double. */
const MAX_STEPS = 1e12;
const MAX_SHARDS = 1_000_000;

const dataset = z
  .strictObject({
    size: int(1, MAX_SAMPLES).describe('Number of samples in the dataset.'),
    shardSize: int(1, MAX_SAMPLES).describe('Samples per shard, the unit a trainer leases; at most size.'),
    epochs: int(1, 10_000).default(1).describe('Passes over the dataset.'),
    shuffle: z.boolean().default(false).describe('Shuffle the shard order every epoch.'),
    seed: int(0, 2 ** 32 - 1).default(0).describe('Seed for the shuffle (a 32-bit unsigned integer).'),
    leaseTimeout: duration().prefault('5m').describe('A leased shard not reported done in this time goes back to the queue.'),
    maxRetries: int(0, 1000).default(3).describe('Times a shard is leased again after its first lease before it counts as poison.'),
    onPoison: z.enum(['fail', 'skip']).default('fail').describe('What a poisoned shard does: fail the job, or skip the shard and go on.'),
  })
  .superRefine((d, ctx) => {
    if (d.shardSize > d.size) {
      ctx.addIssue({ code: 'custom', path: ['shardSize'], message: `must be ≤ spec.dataset.size (got ${d.shardSize} > ${d.size})` });
    } else if (Math.ceil(d.size / d.shardSize) > MAX_SHARDS) {
      // Every epoch's shards are planned and stored up front, one row each.
      const least = Math.ceil(d.size / MAX_SHARDS);
      ctx.addIssue({
        code: 'custom',
        path: ['shardSize'],
        message: `is too small: ${d.size} samples make ${Math.ceil(d.size / d.shardSize)} shards per epoch, at most ${MAX_SHARDS} are allowed (use shardSize ≥ ${least})`,
      });
    }
  });

const failureRule = z
  .strictObject({
    name: str(100).min(1).optional().describe('Shown in events and failure reasons.'),
    exitCodes: z.array(int(0, 255)).min(1).max(256).optional().describe('Matches these exit codes (0-255).'),
    signals: z.array(str(32).regex(/^SIG[A-Z0-9]+$/, 'must be a signal name like SIGKILL')).min(1).max(64).optional().describe('Matches a process killed by one of these signals.'),
    oomKilled: z.boolean().optional().describe('Matches (true) or excludes (false) processes killed for memory.'),
    stderr: str()
      .min(1)
      .refine((p) => compiles(p), 'must be a valid regular expression')
      .optional()
      .describe('Regular expression searched in the last lines of stderr.'),
    class: z.enum(FAILURE_CLASSES).describe('transient: restart in place; nodeFault: relaunch the node; userError: fail fast when it repeats at the same step.'),
  })
  .refine((r) => r.exitCodes || r.signals || r.oomKilled !== undefined || r.stderr, {
    message: 'a failure rule needs at least one of exitCodes, signals, oomKilled, stderr',
  });

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

const faultTolerance = z
  .strictObject({
    maxProcessRestarts: int(0, 10_000).default(3).describe('Times a node restarts its failed processes in place before the node counts as failed.'),
    maxNodeRelaunches: int(0, 10_000).default(3).describe('Times a failed node is relaunched (new incarnation) before the job fails.'),
    heartbeatInterval: duration().prefault('5s').describe('How often agents report.'),
    heartbeatTimeout: duration().prefault('30s').describe('A node silent this long is lost; greater than heartbeatInterval.'),
    hangTimeout: duration().prefault('30m').describe('A job whose step does not advance this long is suspected hung.'),
    startupTimeout: duration()
      .prefault('30m')
      .describe('A job whose training processes print no first step (ROVER_STEP) this long after their round started is suspected hung: imports, data loading and the process group init must fit in it.'),
    pendingTimeout: duration()
      .prefault('15m')
      .describe(
        "A node launched but not registered with the API this long (pod unschedulable or pulling its image, Ray job waiting for resources, agent not starting) is relaunched as its next incarnation (counts against maxNodeRelaunches); with that budget spent the job goes on without it if nodes.min still holds, else fails; either way the reason says why the node was pending in the backend's words. 15m, DLRover's default: room for a cluster autoscaler to add a node and for a large image to pull.",
      ),
    checkpointTimeout: duration()
      .prefault('30m')
      .describe('A checkpoint save under way (ROVER_CHECKPOINT_BEGIN … ROVER_CHECKPOINT) extends hangTimeout by at most this.'),
    hangAction: z
      .enum(HANG_ACTIONS)
      .default('restart')
      .describe('What a detected hang does after its evidence (stacks, process tree, log tail) is recorded: log, restart the processes, or fail the job.'),
    failureRules: z
      .array(failureRule)
      .max(100)
      .prefault([])
      .describe("Rules tried before Rover's own to classify a failed process: transient, nodeFault or userError."),
  })
  .superRefine((f, ctx) => {
    if (f.heartbeatTimeout <= f.heartbeatInterval) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatTimeout'],
        message: `must be greater than spec.faultTolerance.heartbeatInterval (got ${formatDuration(f.heartbeatTimeout)} ≤ ${formatDuration(f.heartbeatInterval)})`,
      });
    }
  });

const diagnosis = z.strictObject({
  nodeCheck: z
    .enum(['auto', 'on', 'off'])
    .default('auto')
    .describe('Pre-flight node check (compute probe + TCP exchange between paired agents) before the first rendezvous and after each relaunch; auto: on from 4 nodes (spec.nodes.max).'),
  probeBytes: int(1, 2 ** 30).default(1_048_576).describe('Bytes each agent sends its paired peer in the network exchange.'),
  timeout: duration().prefault('30s').describe('A check round not finished this long after it started counts as failed for the nodes that did not report.'),
  excludeStragglers: z.boolean().default(false).describe('Remove a node the check finds slower than 2× the median (if spec.nodes.min still holds); otherwise it is only reported.'),
  relaunchStragglers: z.boolean().default(false).describe('While training, relaunch a node whose step compute time stays above 2× the job median (a straggler_detected event; counts against faultTolerance.maxNodeRelaunches); otherwise it is only reported.'),
});

const autoScaling = z.strictObject({
  enabled: z.boolean().default(false).describe("Let the Brain size the job: the initial plan picks the starting node count, the running plan changes it within spec.nodes [min, max] (like `rover scale`)."),
  interval: duration().prefault('5m').describe('How often the job asks the Brain for a running plan.'),
});

const rendezvous = z.strictObject({
  lastCallTimeout: duration().prefault('10s').describe('Once min nodes joined, wait this long for more before closing the round.'),
  joinTimeout: duration().prefault('5m').describe('Fail the round if min nodes have not joined within this time.'),
});

const checkpoint = z.strictObject({
  dir: filePath.optional().describe("Checkpoint folder. Default: .rover/checkpoints/<name>; local backend: relative to the spec file's folder."),
  keep: int(1, 1000).default(3).describe('Newest checkpoints kept; older ones are deleted.'),
  flash: z.boolean().default(false).describe('Save to shared memory first and persist asynchronously.'),
});

const toleration = z.strictObject({
  key: str().min(1).optional(),
  operator: z.enum(['Exists', 'Equal']).default('Equal'),
  value: str().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: int(0, LIMITS.durationMs / 1000).optional(),
});

const kubernetes = z.strictObject({
  image: str().min(1).optional().describe('Container image of the agent and trainer; required for the kubernetes backend.'),
  namespace: str(63).regex(/^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 label').default('default').describe('Namespace for pods and services.'),
  serviceAccount: str(253).min(1).optional().describe('Service account of the pods.'),
  imagePullSecrets: list(str(253).min(1)).prefault([]).describe('Names of secrets for pulling the image.'),
  nodeSelector: map(str(), str()).prefault({}).describe('Pod node selector.'),
  tolerations: z.array(toleration).max(100).prefault([]).describe('Pod tolerations (Kubernetes syntax).'),
  priorityClass: str(253).min(1).optional().describe('Pod priority class name.'),
});

const MAX_RUNTIME_ENV_BYTES = 64 * 1024;

/** Length of the value as JSON, or undefined when it cannot be written as JSON (a cycle). */
function jsonSize(value: unknown): number | undefined {
  try {
    return JSON.stringify(value).length;
  } catch {
    return undefined;
  }
}

export const rayOptionsSchema = z.strictObject({
  address: str()
    .regex(/^https?:\/\/\S+$/, 'must be the Ray dashboard URL, e.g. http://127.0.0.1:8265')
    .default(DEFAULT_RAY_ADDRESS)
    .describe('Ray dashboard (Jobs API) URL.'),
  runtimeEnv: map(str(), z.unknown())
    .superRefine((env, ctx) => {
      const size = jsonSize(env);
      if (size === undefined) ctx.addIssue({ code: 'custom', message: 'must be plain data (JSON): no self-references', input: env });
      else if (size > MAX_RUNTIME_ENV_BYTES) ctx.addIssue({ code: 'custom', message: `must be at most 64 KiB as JSON (got ${size} bytes)`, input: env });
    })
    .prefault({}).describe('Ray runtime_env for the node jobs.'),
  resources: map(str(), z.number().min(0).max(1e15)).prefault({}).describe('Custom Ray resources per node.'),
});

const spec = requiredSection(
  {
    backend: z.enum(BACKENDS).default('local').describe('Where nodes run: local processes, Kubernetes pods or Ray jobs.'),
    kubernetes: kubernetes.optional().describe('Options of the kubernetes backend.'),
    ray: rayOptionsSchema.optional().describe('Options of the ray backend.'),
    nodes: nodes.prefault({}).describe('Node counts; a node is one agent with nprocPerNode processes.'),
    nprocPerNode: int(1, LIMITS.nprocPerNode).default(1).describe('Training processes per node (like torchrun --nproc-per-node).'),
    entrypoint: entrypoint.describe('What each training process runs.'),
    resources: resources.prefault({}).describe('Resources of one node.'),
    dataset: dataset.optional().describe('Dataset sharded by Rover; omit if the trainer reads data itself.'),
    maxSteps: int(1, MAX_STEPS)
      .optional()
      .describe(
        "The step the training ends at (the trainer's own max_steps; Rover does not stop the job there): `rover status` and the workflow's current details show the progress toward it and an ETA at the current step rate. With a dataset too, it is what progress measures.",
      ),
    faultTolerance: faultTolerance.prefault({}).describe('Restart budgets and liveness timeouts.'),
    rendezvous: rendezvous.prefault({}).describe('How a round of nodes is formed.'),
    autoScaling: autoScaling.prefault({}).describe("Auto-scaling by the Brain's running plan (throughput per node)."),
    checkpoint: checkpoint.prefault({}).describe('Where and how checkpoints are kept.'),
    diagnosis: diagnosis.prefault({}).describe('Pre-flight node check and straggler handling.'),
  },
  'the job itself, at least spec.entrypoint.command (see examples/demo.yaml)',
).superRefine(
  (s, ctx) => {
    if (s.backend === 'kubernetes' && !s.kubernetes?.image) {
      ctx.addIssue({
        code: 'custom',
        path: ['kubernetes', 'image'],
        message: 'the kubernetes backend needs a container image: set spec.kubernetes.image (e.g. "python:3.12")',
      });
    }
  },
  // Run even when unrelated fields are wrong, so one pass reports every error; but only on a
  // mapping (a missing or non-mapping spec is already its own error).
  {
    when: (payload) =>
      isMapping(payload.value) && !payload.issues.some((i) => i.path?.[0] === 'backend' || i.path?.[0] === 'kubernetes'),
  },
);

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const jobSpecSchema = z
  .strictObject(
    {
      $schema: str().optional().describe('JSON Schema reference for editors; ignored.'),
      apiVersion: z.literal(API_VERSION).default(API_VERSION),
      kind: z.literal(KIND).default(KIND),
      metadata,
      spec,
    },
    { error: (iss) => (iss.code === 'invalid_type' ? `the spec must be a mapping with metadata and spec (got ${describeValue(iss.input)})` : undefined) },
  )
  .meta({ title: 'Rover ElasticJob', description: 'An elastic, fault-tolerant distributed training job.' });

/** The schema's output; resolveJobSpec turns it into a JobSpec. */
export type ParsedJobSpec = z.output<typeof jobSpecSchema>;

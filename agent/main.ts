// Entry point of the elastic agent process: `node --import tsx agent/main.ts`, configured by
// ROVER_* environment variables (see settings.ts). Exit codes: 0 success or stopped by the
// API, 1 node failed, 2 bad environment, 128+n after signal n (143 for SIGTERM).
import { createLogger } from '../common/logger.ts';
import { Agent } from './agent.ts';
import { CheckpointDeleter } from './checkpointDeletion.ts';
import { FlashSaver } from './flashCheckpoint.ts';
import { HttpApiClient } from './apiClient.ts';
import { configVersionEnv } from './configVersion.ts';
import { resumeEnv } from './resume.ts';
import { AgentSettingsError, parseAgentSettings, type AgentSettings } from './settings.ts';

/** Without a commit seen, the agent asks for doomed checkpoint files every this many heartbeat intervals, at least. */
const DELETION_POLL_BEATS = 6;
/** …and the job's agents together about once per this many ms (a 4,000-node job: each agent every ~67 min). */
const DELETION_JOB_SPACING_MS = 1000;
/** The last deletion pass on exit gets this long (ms). */
const LAST_DELETION_MS = 10_000;

function readSettings(): AgentSettings {
  try {
    return parseAgentSettings(process.env);
  } catch (err) {
    if (!(err instanceof AgentSettingsError)) throw err;
    process.stderr.write(`rover agent: ${err.message}\n`);
    process.exit(2);
  }
}

const settings = readSettings();
const { job, node, incarnation } = settings;
const log = createLogger('agent', settings.logLevel).child({ job, node, incarnation });
const client = new HttpApiClient({ baseUrls: settings.apiUrls, start: node, job, token: settings.token });
// Files a checkpoint commit doomed (retention, partial steps) are deleted here, where they are: the
// API decides and records them, an agent of the job claims and deletes them (agent/checkpointDeletion.ts).
const deleter = new CheckpointDeleter({
  api: client,
  ref: { node, incarnation },
  checkpointDir: settings.checkpointDir,
  ...(settings.entrypoint.workdir !== undefined && { workdir: settings.entrypoint.workdir }),
  intervalMs: settings.heartbeatIntervalMs * DELETION_POLL_BEATS,
  jobSpacingMs: DELETION_JOB_SPACING_MS,
  log: log.child({ part: 'checkpoint-deletion' }),
});
// spec.checkpoint.flash: trainers hand checkpoints over through /dev/shm and this saver.
// It reports to every API replica the API client knows (sharing its choice), and writes only
// into the job's checkpoint folder as the trainers see it (relative: to their working directory).
const flash =
  process.env.ROVER_CHECKPOINT_FLASH === 'true'
    ? new FlashSaver({
        api: client.endpoints,
        job,
        node,
        token: settings.token,
        checkpointDir: settings.checkpointDir,
        ...(settings.entrypoint.workdir !== undefined && { workdir: settings.entrypoint.workdir }),
        log,
        onCommitted: () => deleter.trigger(),
      })
    : undefined;
const baseEnv = flash ? { ...process.env, ROVER_AGENT_URL: await flash.start() } : process.env;
const groupEnv = async (round: { round: number; groupRank: number; nodes: number }) => {
  deleter.setJobNodes(round.nodes);
  return {
    ...(await configVersionEnv(settings, client.endpoints, log)),
    ...(await resumeEnv(settings, client.endpoints, round)),
  };
};
const agent = new Agent({ settings, api: client, log, baseEnv, groupEnv });
deleter.start();

// The training processes lead their own sessions, so a signal meant for the node reaches only
// this process (the local backend signals the agent alone; a terminal's Ctrl-C or hang-up reaches
// only its session): the agent stops them, one SIGTERM per process group, then SIGKILL after the
// grace. SIGHUP is handled too: its default would end the agent at once and orphan the trainers.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => {
    log.info({ signal }, 'signal received: stopping training processes');
    agent.terminate(signal);
  });
}

agent.run().then(
  async (code) => {
    // Pending flash saves are persisted before the agent goes, then the node's shared memory is freed.
    await flash?.close({ removeShm: true }).catch((err: unknown) => log.error({ err }, 'flash saver did not close cleanly'));
    // After the last saves' commits: what they doomed goes now, within a bound.
    await Promise.race([deleter.stop(), new Promise((resolve) => setTimeout(resolve, LAST_DELETION_MS).unref())]);
    process.exit(code);
  },
  (err: unknown) => {
    log.fatal({ err }, 'agent crashed');
    process.exit(1);
  },
);

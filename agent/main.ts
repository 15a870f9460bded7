// Entry point of the elastic agent process: `node --import tsx agent/main.ts`, configured by
// ROVER_* environment variables (see settings.ts). Exit codes: 0 success or stopped by the
// master, 1 node failed, 2 bad environment, 128+n after signal n (143 for SIGTERM).
import { createLogger } from '../common/logger.ts';
import { Agent } from './agent.ts';
import { HttpMasterClient } from './masterClient.ts';
import { AgentSettingsError, parseAgentSettings, type AgentSettings } from './settings.ts';

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
const master = new HttpMasterClient({ baseUrl: settings.apiUrl, job, token: settings.token });
const agent = new Agent({ settings, master, log });

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info({ signal }, 'signal received: stopping training processes');
    agent.terminate(signal);
  });
}

agent.run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log.fatal({ err }, 'agent crashed');
    process.exit(1);
  },
);

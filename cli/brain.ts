// `rover brain …`: the Brain's configuration sync status (Temporal queries of the
// brainConfigSync workflows) and what configuration a job would get (the Brain HTTP API).
import { readFile, stat } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { mergeReads, parseBrainConfigYaml, type SourceRead } from '../brain/config/schema.ts';
import { YamlDirSource } from '../brain/sources/yamlDir.ts';
import { parseSourceList } from '../brain/sources/registry.ts';
import type { ConfigResponse, ServedConfig } from '../brain/protocol.ts';
import { characteristicsOf } from '../brain/service.ts';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { withOperatorToken } from '../common/operatorToken.ts';
import { formatSpecErrors, loadJobSpecFile } from '../common/spec/index.ts';
import { brainSyncStatusQuery, brainSyncWorkflowId, type BrainSyncStatus } from '../workflows/brain/messages.ts';
import { formatTable, formatTime } from './format.ts';
import { connectTemporal } from './jobs.ts';
import { EXIT_INVALID_SPEC } from './validate.ts';

async function brainRequest<T>(config: RoverConfig, route: string, body?: unknown): Promise<T> {
  const url = `${config.brain.url}${route}`;
  // The Brain answers these only to the operator: ROVER_OPERATOR_TOKEN, else the stack's token file.
  const { operatorToken } = withOperatorToken(config, { create: false });
  if (!operatorToken) {
    throw new Error(`the Brain needs the operator token: set ROVER_OPERATOR_TOKEN (or run where the stack's ${config.home}/operator-token is readable)`);
  }
  const headers: Record<string, string> = { authorization: `Bearer ${operatorToken}`, ...(body !== undefined && { 'content-type': 'application/json' }) };
  let res: Response;
  try {
    res = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new Error(`cannot reach the Brain at ${config.brain.url}: ${(err as Error).message}; start it with \`rover up\` or set ROVER_BRAIN_URL`);
  }
  const json = (await res.json().catch(() => ({}))) as T & { message?: string };
  if (!res.ok) throw new Error(`Brain ${route}: ${res.status} ${json.message ?? ''}`.trim());
  return json;
}

/**
 * One sync workflow as `rover brain status` shows it: `running` (its status answered), `starting`
 * (a configured source whose workflow is not started yet or not answering yet, e.g. right after
 * `rover up --detach`), `orphaned` (running for a source no longer configured; the Brain worker
 * ends it when it starts).
 */
export type SourceStatus = { source: string; state: 'running' | 'starting' | 'orphaned'; status?: BrainSyncStatus; error?: string };

/** How long one status query may wait for a worker to answer. */
const STATUS_QUERY_MS = 5_000;

/** Every sync workflow: one row per configured source, then the running ones of sources not configured. */
export async function brainSyncStatuses(client: Client, configured: string[]): Promise<SourceStatus[]> {
  const running = new Set<string>();
  for await (const w of client.workflow.list({ query: "WorkflowType = 'brainConfigSync' AND ExecutionStatus = 'Running'" })) running.add(w.workflowId);
  const ask = async (source: string): Promise<BrainSyncStatus | string> => {
    try {
      return await client.connection.withDeadline(Date.now() + STATUS_QUERY_MS, () => client.workflow.getHandle(brainSyncWorkflowId(source)).query(brainSyncStatusQuery));
    } catch (err) {
      return (err as Error).message;
    }
  };
  const rows: SourceStatus[] = [];
  for (const source of configured) {
    if (!running.has(brainSyncWorkflowId(source))) {
      rows.push({ source, state: 'starting', error: 'no sync workflow yet: the Brain worker starts it (is it running?)' });
      continue;
    }
    const answer = await ask(source);
    rows.push(typeof answer === 'string' ? { source, state: 'starting', error: `not answering yet: ${answer}` } : { source, state: 'running', status: answer });
  }
  const prefix = brainSyncWorkflowId('');
  for (const id of [...running].sort()) {
    const source = id.slice(prefix.length);
    if (!id.startsWith(prefix) || configured.includes(source)) continue;
    const answer = await ask(source);
    rows.push({ source, state: 'orphaned', error: 'its source is not in ROVER_BRAIN_SOURCES; the Brain worker ends it when it starts', ...(typeof answer !== 'string' && { status: answer }) });
  }
  return rows;
}

/**
 * Waits until every configured source's sync workflow answers with its first read done (a read
 * that failed counts: `rover brain status` then shows its error), so that a stack `rover up`
 * calls ready shows every source in `rover brain status`. Orphaned workflows are no wait: the
 * Brain worker ends them before it polls, so before any source answers here.
 */
export async function waitForBrainSync(client: Client, sources: string[], o: { timeoutMs: number; workerExited: () => string | undefined; interrupt?: AbortSignal }): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  let pending: SourceStatus[] = [];
  while (Date.now() < deadline) {
    o.interrupt?.throwIfAborted();
    const exited = o.workerExited();
    if (exited) throw new Error(`the Brain worker exited before its sources were read: ${exited}`);
    pending = (await brainSyncStatuses(client, sources)).filter((r) => r.state !== 'orphaned' && !(r.status && r.status.syncs > 0));
    if (pending.length === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the Brain's sources were not read within ${o.timeoutMs} ms: ${pending.map((r) => `${r.source}: ${r.error ?? 'no read yet'}`).join('; ')}`);
}

/** The status table, then every source's rejected entries, one problem a line under its source. */
export function formatBrainStatus(rows: SourceStatus[]): string {
  const rejected = (row: SourceStatus) => row.status?.rejected ?? [];
  const table = formatTable(
    ['SOURCE', 'STATE', 'VERSION', 'CONFIGS', 'SYNCS', 'LAST SYNC', 'ERROR'],
    rows.map((row) => {
      const { source, state, status, error } = row;
      const problems = rejected(row).length;
      return [
        source,
        state,
        status?.version,
        status?.configs,
        status?.syncs,
        status?.lastSyncAt ? formatTime(new Date(status.lastSyncAt)) : undefined,
        status?.lastError ?? (problems > 0 ? `entries rejected (${problems} problem${problems === 1 ? '' : 's'}, below)` : error),
      ];
    }),
  );
  const withRejected = rows.filter((r) => rejected(r).length > 0);
  if (withRejected.length === 0) return table;
  const lines = withRejected.flatMap((r) => [`${r.source}:`, ...rejected(r).map((p) => `  ${p}`)]);
  return [table, '', 'Rejected entries (not served; every other entry of their source is):', ...lines].join('\n');
}

/**
 * `rover brain config validate <file|folder>`: checked as a source would check it (YAML, the
 * schema and its ranges, unique names; a folder as the `yaml` source reads it). Returns whether
 * every entry is valid and the report: a short OK, or one line per problem and a summary.
 */
export async function validateBrainConfigFile(target: string): Promise<{ ok: boolean; text: string }> {
  let read: SourceRead;
  try {
    if ((await stat(target)).isDirectory()) read = await new YamlDirSource('validate', target).read();
    else read = mergeReads([parseBrainConfigYaml(await readFile(target, 'utf8'), target)]);
  } catch (err) {
    return { ok: false, text: `${target}: cannot read it: ${(err as Error).message}` };
  }
  const names = read.configs.map((c) => c.config.name);
  const valid = names.length === 0 ? 'no configuration' : `${names.length} configuration${names.length === 1 ? '' : 's'} (${names.join(', ')})`;
  if (read.errors.length === 0) return { ok: true, text: `${target}: OK, ${valid}` };
  const problems = `${read.errors.length} problem${read.errors.length === 1 ? '' : 's'}`;
  return { ok: false, text: [...read.errors, `${target}: invalid: ${problems}; valid beside them: ${valid}`].join('\n') };
}

function selectorText(s: unknown): string {
  const text = JSON.stringify(s ?? {});
  return text === '{}' ? '' : text;
}

export function registerBrainCommands(program: Command): void {
  const brain = program.command('brain');

  brain
    .command('status')
    .description('Every sync workflow (configured sources, starting or running, and orphaned ones): served version, last sync, last error')
    .option('--json', 'print the sync workflows\' status as JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const out = this.configureOutput();
      const config = loadConfig();
      const sources = parseSourceList(config.brain.sources);
      const { client, close } = await connectTemporal(config);
      try {
        const rows = await brainSyncStatuses(client, sources.map((s) => s.name));
        out.writeOut?.(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatBrainStatus(rows)}\n`);
        // A source still starting is no failure; a read error, a rejected entry or an orphaned workflow is.
        if (rows.some((r) => r.state === 'orphaned' || r.status?.lastError || (r.status?.rejected ?? []).length > 0)) process.exitCode = 1;
      } finally {
        await close();
      }
    });

  const cfg = brain.command('config').description('Brain configurations (Include / Exclude / Configure)');
  cfg
    .command('list')
    .description('Every configuration of every source\'s latest snapshot')
    .option('--json', 'print as JSON')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const { configs } = await brainRequest<{ configs: ServedConfig[] }>(loadConfig(), '/brain/v1/configs');
      const text = opts.json
        ? JSON.stringify(configs, null, 2)
        : formatTable(['SOURCE', 'VERSION', 'NAME', 'PRIORITY', 'INCLUDE', 'EXCLUDE'], configs.map((c) => [c.source, c.version, c.name, c.priority, selectorText(c.include), selectorText(c.exclude)]));
      this.configureOutput().writeOut?.(`${text}\n`);
    });
  cfg
    .command('show')
    .description('One configuration, as YAML')
    .argument('<name>', 'configuration name (or source/name)')
    .action(async function (this: Command, name: string) {
      const { configs } = await brainRequest<{ configs: ServedConfig[] }>(loadConfig(), '/brain/v1/configs');
      const found = configs.filter((c) => c.name === name || `${c.source}/${c.name}` === name);
      if (found.length === 0) throw new Error(`no configuration named "${name}"; see \`rover brain config list\``);
      this.configureOutput().writeOut?.(found.map((c) => stringify(c)).join('---\n'));
    });
  cfg
    .command('validate')
    .description('Check a configuration file or folder before it is deployed: YAML, fields and their ranges, unique names (exit 2 when invalid)')
    .argument('<file|folder>', 'YAML file with one configuration, a list, or {configs: [...]}; or a folder of them, read as the yaml source reads it')
    .action(async function (this: Command, file: string) {
      const out = this.configureOutput();
      const { ok, text } = await validateBrainConfigFile(file);
      if (ok) out.writeOut?.(`${text}\n`);
      else {
        out.writeErr?.(`${text}\n`);
        process.exitCode = EXIT_INVALID_SPEC;
      }
    });
  cfg
    .command('match')
    .description('The merged configuration a job would get, and which configurations made it')
    .argument('<job.yaml>', 'job spec file')
    .option('--json', 'print as JSON')
    .action(async function (this: Command, file: string, opts: { json?: boolean }) {
      const out = this.configureOutput();
      const spec = await loadJobSpecFile(file);
      if (!spec.ok) {
        out.writeErr?.(`${formatSpecErrors(spec.errors, file)}\n`);
        process.exitCode = EXIT_INVALID_SPEC;
        return;
      }
      const merged = await brainRequest<ConfigResponse>(loadConfig(), '/brain/v1/config', characteristicsOf(spec.spec));
      if (opts.json) {
        out.writeOut?.(`${JSON.stringify(merged, null, 2)}\n`);
        return;
      }
      const applied = merged.applied.length ? merged.applied.join(', ') : 'none';
      out.writeOut?.(`job: ${JSON.stringify(merged.job)}\napplied (last wins): ${applied}\n${stringify({ configure: merged.configure, origin: merged.origin })}`);
    });
}

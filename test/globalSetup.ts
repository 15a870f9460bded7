// One real Temporal dev server for the whole test run, on free ports, stopped at the end; and one
// bundle of the workflow code for the in-process workers of every test file.
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort, startDevServer, type DevServer } from '../deploy/local/devServer.ts';
import { resolveTemporalCli } from '../deploy/local/temporalCli.ts';
import { bundleWorkflows } from '../workers/jobWorker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCli: string;
    /** File of the run's workflow bundle (test/helpers.ts workflowBundle). */
    workflowBundlePath: string;
  }
}

let server: DevServer | undefined;
let bundleFile: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const cli = await resolveTemporalCli((m) => console.log(`[temporal] ${m}`));
  const port = await freePort();
  const logFile = path.join(os.tmpdir(), `rover-test-temporal-${port}.log`);
  // Webpack takes seconds per bundle: once here, while the server starts, not once per test file.
  const [started, bundle] = await Promise.all([startDevServer({ cli, port, uiPort: 0, headless: true, logFile }), bundleWorkflows()]);
  server = started;
  bundleFile = path.join(os.tmpdir(), `rover-test-workflow-bundle-${port}.js`);
  writeFileSync(bundleFile, bundle.code);
  project.provide('workflowBundlePath', bundleFile);
  project.provide('temporalAddress', server.address);
  project.provide('temporalCli', cli);
}

export async function teardown(): Promise<void> {
  if (bundleFile) rmSync(bundleFile, { force: true });
  if (!server) return;
  const exited = new Promise((resolve) => server!.process.once('exit', resolve));
  server.process.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (server.process.exitCode === null) server.process.kill('SIGKILL');
}

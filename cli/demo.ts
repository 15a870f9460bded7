// The demo job `rover up` submits, so the first command shows a real job training.
import type { RoverConfig } from '../common/config.ts';
import { repoRoot } from '../common/repoRoot.ts';
import { formatSpecErrors, loadJobSpecFile } from '../common/spec/index.ts';
import { connectTemporal, JobAlreadyRunningError, submitJob, webUiUrl } from './jobs.ts';

/** Submits examples/demo.yaml (unless it is already running); returns the job's name. */
export async function submitDemoJob(config: RoverConfig, say: (message: string) => void): Promise<string> {
  // Resolved against the repository so examples/trainer.py is found from any directory.
  const loaded = await loadJobSpecFile('examples/demo.yaml', { cwd: repoRoot });
  if (!loaded.ok) throw new Error(`examples/demo.yaml is invalid:\n${formatSpecErrors(loaded.errors, 'examples/demo.yaml')}`);
  const { client, close } = await connectTemporal(config);
  try {
    const handle = await submitJob(client, loaded.spec, { taskQueue: config.temporal.taskQueue, specFile: 'examples/demo.yaml' });
    say(`demo job submitted: ${webUiUrl(config, handle.workflowId)}`);
    say('follow it with `npx rover status demo` and `npx rover logs demo --follow`');
  } catch (err) {
    if (!(err instanceof JobAlreadyRunningError)) throw err;
    say('demo job is already running; see `npx rover status demo`');
  } finally {
    await close();
  }
  return loaded.spec.metadata.name;
}

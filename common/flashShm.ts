// Where flash checkpoints live in a node's shared memory: /dev/shm/rover/<job>/<node>/. The
// agent's flash saver and the trainers on the node write there; the local backend frees a
// deleted node's folder, as a deleted pod's memory goes with it.
import path from 'node:path';

export const SHM_ROOT = '/dev/shm/rover';

/** The shared-memory folder of one node of a job. */
export function nodeShmDir(job: string, node: number, root: string = SHM_ROOT): string {
  return path.join(root, job, String(node));
}

// Flash checkpoint handoff for real: the Python client writes to /dev/shm and notifies the
// agent's saver, which persists to storage and reports to a real API; the bytes restored —
// from shared memory, and from disk once memory is gone — are the bytes saved. Any local process
// can reach the saver, so it must refuse requests without this node's token and writes outside the
// job's checkpoint folder (or reads outside the node's shared memory), and leave nothing behind.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiEndpoints } from '../common/apiUrls.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { nodeToken, tokenDigest } from '../common/tokens.ts';
import { buildApi } from '../api/server.ts';
import { openStore } from '../store/index.ts';
import { RoverClient, readTrainerEnv, sha256Hex } from '../clients/ts/roverClient.ts';
import { acceptsConnection } from '../test/helpers.ts';
import { FlashSaver } from './flashCheckpoint.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A URL where nothing listens: a port the system handed out and took back. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** `apiUrls`: the replicas the saver reports to, given the live API's URL (default just that one). */
async function stack(job: string, apiUrls = (live: string) => [live]) {
  const store = await openStore('sqlite::memory:');
  // The job's checkpoint folder: the API accepts only reports of files inside it.
  const dir = mkdtempSync(path.join(tmpdir(), 'rover-flash-'));
  const parsed = parseJobSpec({ metadata: { name: job, user: 'u' }, spec: { entrypoint: { command: 'true' }, checkpoint: { flash: true, dir } } });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await store.jobs.create({ id: job, workflowId: `job-${job}`, user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 'tok' });
  /** A closed round of one node: what the agent's restart of its trainers goes through. */
  const round = async (r: number) => {
    await store.rendezvous.openRound({ jobId: job, round: r, minNodes: 1, maxNodes: 1 });
    await store.rendezvous.join({ jobId: job, round: r, nodeId: 0, incarnation: 0, host: 'h' });
    await store.rendezvous.closeRound({ jobId: job, round: r, ranks: [{ nodeId: 0, rank: 0 }], masterAddr: 'h', masterPort: 1 });
  };
  await round(1);
  const app = await buildApi({ config: loadConfig({}), store, logger: createLogger('test', 'silent') });
  const apiUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  const saver = new FlashSaver({ api: new ApiEndpoints(apiUrls(apiUrl)), job, node: 0, token: 'tok', checkpointDir: dir, log: createLogger('test', 'silent') });
  const agentUrl = await saver.start();
  cleanups.push(
    () => store.close(),
    () => app.close(),
    () => saver.close({ removeShm: true }),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  const env = {
    ROVER_API_URL: apiUrl, ROVER_JOB: job, ROVER_TOKEN: 'tok', ROVER_NODE: '0', ROVER_INCARNATION: '0',
    ROVER_ROUND: '1', RANK: '0', WORLD_SIZE: '1', ROVER_AGENT_URL: agentUrl, ROVER_CHECKPOINT_DIR: dir,
  };
  return { store, saver, agentUrl, env, dir, round };
}

/** POST /save with `authorization` as the header (none when null). */
function save(agentUrl: string, body: object, authorization: string | null = 'Bearer tok') {
  return fetch(`${agentUrl}/save`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization !== null && { authorization }) },
    body: JSON.stringify(body),
  });
}

/** Saving marks in the node's shared memory (a refused request must leave none). */
const marks = (saver: FlashSaver) => readdirSync(saver.nodeDir).filter((n) => n.endsWith('.saving'));

const PY = `
import hashlib, importlib.util, os, sys
spec = importlib.util.spec_from_file_location("rover_client", "clients/python/rover_client.py")
rc = importlib.util.module_from_spec(spec); spec.loader.exec_module(rc)
client = rc.Client.from_env()
if sys.argv[1] == "save":
    data = os.urandom(int(sys.argv[2]))
    client.save_checkpoint(7, data)
    print(hashlib.sha256(data).hexdigest())
else:
    step, data = client.load_checkpoint()
    print(step, hashlib.sha256(data).hexdigest())
`;

describe('flash checkpoint', () => {
  it('restores the saved bytes from shared memory and, once memory is gone, from disk', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { store, saver, env, round } = await stack(job);
    const py = (...args: string[]) => run('python3', ['-c', PY, ...args], { cwd: ROOT, env: { ...process.env, ...env } });

    // The saver listens on 127.0.0.1 only: another address of this machine is refused.
    const port = Number(new URL(env.ROVER_AGENT_URL!).port);
    expect(await acceptsConnection('127.0.0.1', port)).toBe(true);
    expect(await acceptsConnection('127.0.0.2', port)).toBe(false);
    const saved = (await py('save', String(8 << 20))).stdout.trim();
    await saver.flush();
    expect(saver.failures).toEqual([]);
    const commit = await store.checkpoints.latestCommit(job);
    expect(commit?.step).toBe(7);
    const [report] = await store.checkpoints.listForStep(job, 7);
    expect(report).toMatchObject({ rank: 0, bytes: 8 << 20, checksum: saved });
    const shm = path.join('/dev/shm/rover', job, '0', '0-7');
    expect(existsSync(shm)).toBe(true);

    // The trainer restarts on this node (a new round) and resumes from the committed step 7.
    await round(2);
    env.ROVER_ROUND = '2';
    expect((await py('load')).stdout.trim()).toBe(`7 ${saved}`); // from shared memory
    rmSync(shm);
    const fromDisk = await new RoverClient(readTrainerEnv({ ...env, ROVER_AGENT_URL: '' })).loadCheckpoint();
    expect(fromDisk.step).toBe(7);
    expect(sha256Hex(fromDisk.data!)).toBe(saved);
  });

  it('says so when /dev/shm is too small for the checkpoint', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { env } = await stack(job);
    const script = `
import importlib.util, shutil
spec = importlib.util.spec_from_file_location("rover_client", "clients/python/rover_client.py")
rc = importlib.util.module_from_spec(spec); spec.loader.exec_module(rc)
shutil.disk_usage = lambda p: shutil._ntuple_diskusage(1 << 20, 1 << 20, 1000)  # a full /dev/shm
try:
    rc.Client.from_env().save_checkpoint(1, b"x" * 4096)
except rc.RoverError as e:
    print(e)`;
    const { stdout } = await run('python3', ['-c', script], { cwd: ROOT, env: { ...process.env, ...env } });
    expect(stdout).toContain('/dev/shm has 1000 bytes free, the checkpoint needs 4096');
  });

  it('persists the first `bytes` bytes of a reused buffer and clears the saving marks a dead saver left', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { store, saver, env, dir } = await stack(job);
    // A buffer bigger than this save (rover_torch reuses one per rank), and a mark from a saver
    // that died mid-save: a new saver must not leave the trainer skipping saves forever.
    const buffer = path.join(saver.nodeDir, '0-buffer');
    const content = randomBytes(3 << 20);
    writeFileSync(buffer, content);
    writeFileSync(`${buffer}.saving`, '');
    await saver.close({ removeShm: false });
    const restarted = new FlashSaver({ api: new ApiEndpoints([env.ROVER_API_URL]), job, node: 0, token: 'tok', checkpointDir: dir, log: createLogger('test', 'silent') });
    const agentUrl = await restarted.start();
    cleanups.push(() => restarted.close({ removeShm: true }));
    expect(existsSync(`${buffer}.saving`)).toBe(false);

    const bytes = 1 << 20;
    const target = path.join(dir, 'ckpt-5-rank0.bin');
    const res = await save(agentUrl, { node: 0, incarnation: 0, rank: 0, round: 1, step: 5, shmPath: buffer, path: target, bytes });
    expect(res.status).toBe(202);
    await restarted.flush();
    expect(restarted.failures).toEqual([]);
    expect(readFileSync(target).equals(content.subarray(0, bytes))).toBe(true);
    const [report] = await store.checkpoints.listForStep(job, 5);
    expect(report).toMatchObject({ bytes, checksum: sha256Hex(content.subarray(0, bytes)) });
    expect(existsSync(`${buffer}.saving`)).toBe(false);
    expect(existsSync(buffer)).toBe(true); // the buffer stays for the next save and for a restarted trainer
  });

  it('persists pending saves on close and frees the node’s shared memory', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { store, saver, env, round } = await stack(job);
    const data = randomBytes(1 << 20);
    await new RoverClient(readTrainerEnv(env)).saveCheckpoint(3, data);
    await saver.close({ removeShm: true });
    expect((await store.checkpoints.latestCommit(job))?.step).toBe(3);
    expect(existsSync(path.join('/dev/shm/rover', job))).toBe(false);
    await round(2);
    const restarted = new RoverClient(readTrainerEnv({ ...env, ROVER_ROUND: '2' }));
    expect(sha256Hex((await restarted.loadCheckpoint()).data!)).toBe(sha256Hex(data));
  });

  it('removes the file of a save whose report the API refuses (its round is over), and keeps the others', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { store, saver, agentUrl, dir, round } = await stack(job);
    await round(2);
    const saveStep = async (step: number, r: number) => {
      const shm = path.join(saver.nodeDir, `0-${step}`);
      writeFileSync(shm, randomBytes(4096));
      const target = path.join(dir, `ckpt-${step}-rank0.bin`);
      const res = await save(agentUrl, { node: 0, incarnation: 0, rank: 0, round: r, step, shmPath: shm, path: target, bytes: 4096 });
      expect(res.status).toBe(202);
      await saver.flush();
      return target;
    };
    // Round 2's save moves the job's ledger to round 2; a save of round 1 that waited is then stale.
    const kept = await saveStep(5, 2);
    const stale = await saveStep(4, 1);
    expect(existsSync(kept)).toBe(true);
    expect(existsSync(stale)).toBe(false);
    expect(await store.checkpoints.listForStep(job, 4)).toEqual([]);
    expect(saver.failures).toEqual([expect.stringContaining('flash checkpoint of step 4 rank 0 not saved: the API refused the report: HTTP 409')]);
  });

  it("refuses a save without this node's token: 403, nothing written, nothing marked, nothing reported", async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { store, saver, agentUrl, dir } = await stack(job);
    const shm = path.join(saver.nodeDir, '0-4');
    writeFileSync(shm, randomBytes(4096));
    const target = path.join(dir, 'ckpt-4-rank0.bin');
    const body = { node: 0, incarnation: 0, rank: 0, round: 1, step: 4, shmPath: shm, path: target, bytes: 4096 };
    const otherNode = nodeToken('signing-key', tokenDigest('tok'), { node: 1, incarnation: 0 });
    for (const authorization of [null, 'Bearer wrong', `Bearer ${otherNode}`, 'Bearer ', 'tok', 'Basic tok']) {
      const res = await save(agentUrl, body, authorization);
      expect(res.status, String(authorization)).toBe(403);
      expect(await res.json()).toMatchObject({ error: 'forbidden', message: expect.stringContaining('Authorization: Bearer <token>') });
    }
    await saver.flush();
    expect(existsSync(target)).toBe(false);
    expect(marks(saver)).toEqual([]);
    expect(await store.checkpoints.listForStep(job, 4)).toEqual([]);
  });

  it('refuses a destination outside the checkpoint folder (by "..", by name, through a symlink) before writing anything', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { store, saver, agentUrl, dir } = await stack(job);
    const outside = mkdtempSync(path.join(tmpdir(), 'rover-flash-outside-'));
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    symlinkSync(outside, path.join(dir, 'link'));
    const shm = path.join(saver.nodeDir, '0-4');
    writeFileSync(shm, randomBytes(4096));
    const escape = `escape-${randomBytes(4).toString('hex')}.bin`;
    const cases = [
      { path: `${dir}/../${escape}`, lands: path.join(dir, '..', escape), says: 'must not contain ".."' },
      { path: path.join(outside, 'ckpt.bin'), lands: path.join(outside, 'ckpt.bin'), says: 'is outside' },
      { path: path.join(dir, 'link', 'ckpt.bin'), lands: path.join(outside, 'ckpt.bin'), says: 'through a symlink' },
    ];
    for (const c of cases) {
      const res = await save(agentUrl, { node: 0, incarnation: 0, rank: 0, round: 1, step: 4, shmPath: shm, path: c.path, bytes: 4096 });
      expect(res.status, c.path).toBe(400);
      const answer = (await res.json()) as { error: string; message: string };
      expect(answer.error).toBe('invalid_request');
      expect(answer.message).toMatch(/^body\.path: /);
      expect(answer.message).toContain(c.says);
      expect(answer.message).toContain(JSON.stringify(dir));
    }
    await saver.flush();
    expect(saver.failures).toEqual([]);
    for (const c of cases) expect(existsSync(c.lands), c.lands).toBe(false);
    expect(readdirSync(outside)).toEqual([]);
    expect(marks(saver)).toEqual([]);
    expect(await store.checkpoints.listForStep(job, 4)).toEqual([]);
  });

  it("refuses a shared-memory file that leads out of the node's folder through a symlink", async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const { saver, agentUrl, dir } = await stack(job);
    const outside = mkdtempSync(path.join(tmpdir(), 'rover-flash-secret-'));
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    const secret = path.join(outside, 'secret');
    writeFileSync(secret, 'not for the checkpoint folder');
    const shm = path.join(saver.nodeDir, '0-4');
    symlinkSync(secret, shm);
    const target = path.join(dir, 'ckpt-4-rank0.bin');
    const res = await save(agentUrl, { node: 0, incarnation: 0, rank: 0, round: 1, step: 4, shmPath: shm, path: target, bytes: 10 });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', message: expect.stringMatching(/^body\.shmPath: .*through a symlink/) });
    await saver.flush();
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${secret}.saving`)).toBe(false);
    expect(marks(saver)).toEqual([]);
  });

  it('reports to the next API replica when the first cannot be reached', async () => {
    const job = `flash-${randomBytes(4).toString('hex')}`;
    const dead = await deadUrl();
    const { store, saver, env } = await stack(job, (live) => [dead, live]);
    await new RoverClient(readTrainerEnv(env)).saveCheckpoint(2, randomBytes(4096));
    await saver.flush();
    expect(saver.failures).toEqual([]);
    expect((await store.checkpoints.latestCommit(job))?.step).toBe(2);
  });
});

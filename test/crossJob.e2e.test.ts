// A trainer can act only on its own job: a real trainer of job A, on the real stack, tries every
// side door into a running job B, and every attempt fails while A's token still opens A:
// - Temporal: the stack runs against a secured Temporal (mutual TLS and an API key, as in
//   production); the probe runs the real `rover stop` at it with its CA's public certificate —
//   plain, without a client certificate, with one from another CA — and every try is refused.
// - the store: with MySQL it writes B's row over TCP without the password (as the stack's user
//   and as root); with SQLite (the local backend's file is the user's own) it presents B's token
//   digest as a token;
// - the API with A's own token on every route that names a job, and the Brain;
// - B's node-check server.
// Nothing to connect with is in its environment either: no store URL, Temporal address or
// settings, or operator token. On SQLite, and on MySQL when ROVER_TEST_MYSQL_URL is set.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import type { NodeCheckState } from '../common/nodeCheckSession.ts';
import { describeEachDialect } from '../store/testing.ts';
import { jobOutcome, temporalAddress, waitUntil } from './helpers.ts';
import { jobSpecInput, repoRoot } from './jobFixtures.ts';
import { makeCertificates, SECURED_TEMPORAL_API_KEY, startSecuredProxy, type SecuredProxy } from './securedTemporal.ts';
import { startTestStack, type TestStack } from './stack.ts';

type Attempt = { path: string; outcome: string; refused: boolean };
type Probe = { control: Record<string, number>; attempts: Attempt[] };

// The secured Temporal both stacks run through: a proxy demanding a client certificate of the
// test's CA and the API key, in front of the suite's dev server. The raw dev server behind it
// stands in for a cluster's private network: the probe is not told its address (on this one
// machine a port scan would find it; a real cluster's only door is its secured frontend).
const certs = mkdtempSync(path.join(os.tmpdir(), 'rover-cross-job-tls-'));
let proxy: SecuredProxy;
beforeAll(async () => {
  makeCertificates(certs);
  proxy = await startSecuredProxy(certs, temporalAddress());
});
afterAll(() => proxy?.close());

/** The operator's settings for the secured Temporal: the stack's worker and client use them. */
function securedTemporalEnv(): Record<string, string> {
  return {
    ROVER_TEMPORAL_ADDRESS: proxy.address,
    ROVER_TEMPORAL_TLS_CA_FILE: path.join(certs, 'rover-ca.pem'),
    ROVER_TEMPORAL_TLS_CERT_FILE: path.join(certs, 'client.pem'),
    ROVER_TEMPORAL_TLS_KEY_FILE: path.join(certs, 'client.key'),
    ROVER_TEMPORAL_TLS_SERVER_NAME: 'localhost',
    ROVER_TEMPORAL_API_KEY: SECURED_TEMPORAL_API_KEY,
  };
}

/** What the attacker knows of Temporal: its address and its CA's public certificate, plus a client certificate of its own CA. */
function temporalTarget(stack: TestStack) {
  const kit = path.join(stack.home, 'attacker');
  mkdirSync(kit);
  for (const f of ['rover-ca.pem', 'stranger.pem', 'stranger.key']) copyFileSync(path.join(certs, f), path.join(kit, f));
  return { address: proxy.address, ca_file: path.join(kit, 'rover-ca.pem'), server_name: 'localhost', stranger_cert: path.join(kit, 'stranger.pem'), stranger_key: path.join(kit, 'stranger.key') };
}

/** Where the store is: the SQLite file, or the MySQL server and names without the password. */
function storeTarget(storeUrl: string) {
  if (storeUrl.startsWith('sqlite:')) return { file: storeUrl.slice('sqlite:'.length) };
  const url = new URL(storeUrl);
  return { host: url.hostname, port: Number(url.port || 3306), database: url.pathname.slice(1), user: decodeURIComponent(url.username) };
}

describeEachDialect('a trainer of job A against job B (secured Temporal)', (dialect) => {
  it('refuses it every way into the other job', async () => {
    let stack: TestStack | undefined;
    let stopB = '';
    try {
      stack = await startTestStack(`cross job ${dialect}`, {
        ROVER_OPERATOR_TOKEN: 'operator-secret-of-the-cross-job-test',
        ...securedTemporalEnv(),
      }, { store: dialect });
      const s = stack;
      stopB = path.join(s.home, 'stop-b');
      const target = path.join(s.home, 'target.json');
      const out = path.join(s.home, 'probe.json');
      await Promise.all([s.startWorker(), s.startApi()]);
      const submit = (job: string, args: string[], nodeCheck: 'on' | 'off') => {
        const input = jobSpecInput(s.home, job, { nodes: 1, nproc: 1 });
        const parsed = parseJobSpec({
          ...input,
          spec: {
            ...input.spec,
            entrypoint: { command: 'python3', args: ['test/trainers/cross_job_probe.py', ...args], workdir: repoRoot },
            diagnosis: { nodeCheck, timeout: '20s' },
          },
        });
        if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
        return submitJob(s.client, parsed.spec, { taskQueue: s.config.temporal.taskQueue });
      };

      // Job B trains until told to stop. Its node passed the check; the check server may have
      // closed since (a refused connection counts as refused).
      const b = await submit('cj-b', ['idle', stopB], 'on');
      const check = await waitUntil(async () => {
        const row = await s.store.nodeChecks.get('cj-b');
        const state = row?.state as NodeCheckState | undefined;
        return state && Object.keys(state.verdicts).length > 0 ? state.ready['0'] : undefined;
      }, "job B's node check verdict", 90_000);
      const rowB = await waitUntil(async () => {
        const row = await s.store.jobs.get('cj-b');
        return row?.phase === 'RUNNING' ? row : undefined;
      }, 'job B to run', 60_000);
      writeFileSync(target, JSON.stringify({
        job: 'cj-b',
        check_host: check.host,
        check_port: check.port,
        store: storeTarget(s.config.storeUrl),
        temporal: temporalTarget(s),
      }));

      const refusalsBefore = proxy.tlsRefusals.length;
      const a = await submit('cj-a', ['attack', target, out], 'off');
      const resultA = await jobOutcome(a);
      expect(resultA.phase, resultA.reason ?? '').toBe('SUCCEEDED');
      const probe = await waitUntil(() => (existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Probe) : undefined), "the probe's findings");

      expect(probe.control).toEqual({ 'own shards': 200, 'own config': 200 });
      const tried = (prefix: string) => probe.attempts.filter((x) => x.path.startsWith(prefix));
      // Every route that names a job was tried (16 on the API — api/fuzz.test.ts lists them — and 3 on the Brain), plus the
      // environment, Temporal, the store and the node-check server.
      expect(tried('env').length).toBe(7);
      expect(tried('Temporal').length).toBe(3);
      expect(tried('store').length).toBe(2);
      expect(tried('API').length).toBe(16);
      expect(tried('Brain').length).toBe(3);
      expect(tried('node-check').length).toBe(2);
      const opened = probe.attempts.filter((x) => !x.refused);
      expect(opened, JSON.stringify(opened)).toEqual([]);
      for (const x of [...tried('API'), ...tried('Brain'), ...tried('store read')]) expect(x.outcome, x.path).toBe('HTTP 403');
      // The CLI ran and could not connect (not a missing program or module, not a hang)...
      for (const x of tried('Temporal')) expect(x.outcome, x.path).toMatch(/^exit 1: rover: cannot reach Temporal at 127\.0\.0\.1:\d+: /);
      // ...because the frontend refused each handshake: plain text, no client certificate, a foreign one.
      const refusals = proxy.tlsRefusals.slice(refusalsBefore);
      expect(refusals).toContain('wrong version number');
      expect(refusals).toContain('peer did not return a certificate');
      expect(refusals.some((r) => /^UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/.test(r)), refusals.join(', ')).toBe(true);
      if (dialect === 'mysql') {
        // 1045: wrong or no password; 1698: an account (MariaDB's root) that takes no password at all.
        expect(tried('store write').length).toBe(2);
        for (const x of tried('store write')) expect(x.outcome, x.path).toMatch(/^exit 1: ERROR (1045|1698) \(28000\): Access denied for user/);
      }

      // B noticed nothing: its row is as it was, its workflow runs, and it finishes when told
      // (a stop that got through would have ended it STOPPED).
      const after = await s.store.jobs.get('cj-b');
      expect({ phase: after?.phase, reason: after?.reason, tokenDigest: after?.tokenDigest }).toEqual({ phase: 'RUNNING', reason: rowB.reason, tokenDigest: rowB.tokenDigest });
      expect((await b.describe()).status.name).toBe('RUNNING');
      writeFileSync(stopB, '');
      const resultB = await jobOutcome(b);
      expect(resultB.phase, resultB.reason ?? '').toBe('SUCCEEDED');
    } finally {
      if (stopB) writeFileSync(stopB, '');
      await stack?.close();
    }
  }, 240_000);
});

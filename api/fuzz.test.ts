// Property test of every HTTP route, on the API and on the standalone Brain, against a real SQLite
// store holding two real jobs: generated path ids, headers, tokens and bodies get a 2xx or a 4xx
// whose JSON body gives a reason — never a 5xx, never a crash — and a route that reveals or
// changes a job answers 2xx only to that job's token (or, on the Brain, the operator's).
// The routes are listed from the apps themselves (onRoute), so a new route fails the suite until
// it has a row in ROUTES. FUZZ_SEED=<n> explores other corners; fast-check prints the seed and the
// smallest failing request on failure; FUZZ_RUNS=<n> sends more requests per route.
import type { FastifyInstance, InjectOptions } from 'fastify';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { digestHex, nodeToken, tokenDigest } from '../common/tokens.ts';
import { openStore, type Store } from '../store/index.ts';
import { buildBrainApi } from './brainServer.ts';
import { buildApi } from './server.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 11);
/** Requests per route and app: enough to reach every mutation kind, a few seconds in all; FUZZ_RUNS=<n> digs deeper. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const OPERATOR = 'operator-token-for-the-fuzz-suite-0123';
const TOKENS: Record<string, string> = { a: '0d1f3c9e-7b2a-4c55-9e61-4a8f2b7c1d30', b: 'b7e4a1c2-9d3f-4e80-8a17-6c5b4d3e2f10' };
const BODY_LIMIT = 64 * 1024;

/**
 * Who may get a 2xx: anyone; the token of the job in the path; the operator or the token of the
 * job the request names (query or body `job`); the operator only.
 */
type Access = 'open' | 'job' | 'brain' | 'operator';
interface RouteCase {
  access: Access;
  /** A valid body (for job `a`, node 0, round 1) that the mutations start from. */
  body?: Record<string, unknown>;
  /** A valid query string's values. */
  query?: Record<string, string>;
  /** Values tried for path parameters other than :job (valid ones first). */
  params?: Record<string, string[]>;
}

const ref = { node: 0, incarnation: 0 };
const trainer = { ...ref, rank: 0, round: 1 };
const sha = 'a'.repeat(64);
const ROUTES: Record<string, RouteCase> = {
  'GET /healthz': { access: 'open' },
  'GET /metrics': { access: 'open' },
  'POST /v1/jobs/:job/nodes/register': { access: 'job', body: { ...ref, pid: 4242, host: 'node-0' } },
  'POST /v1/jobs/:job/nodes/report': {
    access: 'job',
    body: { ...ref, kind: 'process_failed', round: 1, localRank: 0, exitCode: 1, signal: null, stderrTail: 'boom', exitedAt: 1, step: 3, restarts: 0, reason: 'x', allProcessesAlike: false },
  },
  'POST /v1/jobs/:job/nodes/heartbeat': {
    access: 'job',
    body: { ...ref, round: 1, step: 3, processes: [{ localRank: 0, pid: 4243, cpuPercent: 50, rssBytes: 1e6 }], checkpointing: false, computeSeconds: 0.1 },
  },
  'POST /v1/jobs/:job/nodes/events': { access: 'job', body: { ...ref, kind: 'stack_dump', rank: 0, data: { hang: 1, method: 'py-spy', pid: 4243, localRank: 0, stack: 'frame', logTail: 'line' } } },
  'POST /v1/jobs/:job/nodes/check': { access: 'job', body: { ...ref, host: '127.0.0.1', port: 9, secret: 'a'.repeat(32), result: { round: 1, ok: true, seconds: 0.5 } } },
  'POST /v1/jobs/:job/rendezvous/join': { access: 'job', body: { ...ref, host: 'node-0', freePort: 29500 } },
  // A long poll only while the round is open: round 1 is closed, and generated waitMs values are capped at 30 s.
  'GET /v1/jobs/:job/rendezvous/:round': { access: 'job', query: { node: '0', incarnation: '0', waitMs: '0' }, params: { round: ['1', '2', '0', '-1', 'abc', '1.5', '1e3', '9'.repeat(40), '%20'] } },
  'GET /v1/jobs/:job/shards': { access: 'job' },
  'POST /v1/jobs/:job/shards/lease': { access: 'job', body: { ...trainer, count: 2 } },
  'POST /v1/jobs/:job/shards/done': { access: 'job', body: { ...trainer, step: 1, shards: [{ epoch: 0, shardIndex: 0 }] } },
  'POST /v1/jobs/:job/shards/giveback': { access: 'job', body: { ...trainer, shards: [{ epoch: 0, shardIndex: 1 }] } },
  'POST /v1/jobs/:job/trainers/step': { access: 'job', body: { ...trainer, step: 2, metrics: { loss: 0.5 } } },
  'POST /v1/jobs/:job/checkpoints': { access: 'job', body: { ...trainer, step: 1, path: '/nonexistent/rover-fuzz/a/s1-r0', bytes: 1, checksum: sha } },
  'POST /v1/jobs/:job/checkpoints/restored': { access: 'job', body: { ...trainer, step: 1, source: 'shm', seconds: 0.5 } },
  // A long poll only when `after` names the current version: generated values never do.
  'GET /v1/jobs/:job/config': { access: 'job', query: { waitMs: '0' } },
  'POST /v1/jobs/:job/checkpoints/deletions/claim': { access: 'job', body: { ...ref, limit: 16 } },
  'GET /v1/jobs/:job/checkpoints/live': { access: 'job', query: { node: '0', incarnation: '0', afterStep: '1', afterRank: '0' } },
  'POST /v1/jobs/:job/checkpoints/deletions/done': { access: 'job', body: { ...ref, token: 'b'.repeat(32), ids: [1, 2] } },
  'GET /v1/jobs/:job/checkpoints/latest': { access: 'job', query: { round: '1', node: '0', incarnation: '0', rank: '0' } },
  'POST /brain/v1/optimize': { access: 'brain', body: { job: 'a', stage: 'oom', nodeId: 0, incarnation: 0, exitCode: 137, reason: 'OOMKilled', memoryBytes: 2 ** 30 } },
  'GET /brain/v1/config': { access: 'brain', query: { job: 'a' } },
  'POST /brain/v1/config': { access: 'operator', body: { name: 'a', user: 'ada', group: 'vision', cluster: '', labels: { team: 'cv' } } },
  'GET /brain/v1/configs': { access: 'operator' },
};

// ---- generators --------------------------------------------------------------------------------

const unicode = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(encodeURIComponent);
/** A path id: a seeded job, or garbage (dot segments, encoded slashes, huge, empty, unicode). */
const jobId = fc.oneof(
  { arbitrary: fc.constantFrom('a', 'b'), weight: 6 },
  fc.constantFrom('', 'missing', '.', '..', '%2e%2e', '..%2f..%2fb', 'a%2Fb', 'a%00', '%ZZ', '%', 'a b', 'x'.repeat(254), 'x'.repeat(5000), '%F0%9F%98%80', '__proto__', 'constructor'),
  unicode,
);
/** Node tokens: `a0` node 0 incarnation 0 of job a (the node the valid requests name), `a1` node 1 of a, `b0` node 0 of b. */
type NodeTokenKind = 'a0' | 'a1' | 'b0';
type TokenKind = 'a' | 'b' | NodeTokenKind | 'operator' | 'digest' | 'digestHex' | 'empty' | 'none';
const NODE_TOKENS: Record<NodeTokenKind, { job: string; node: number; incarnation: number }> = {
  a0: { job: 'a', node: 0, incarnation: 0 },
  a1: { job: 'a', node: 1, incarnation: 0 },
  b0: { job: 'b', node: 0, incarnation: 0 },
};
const isNodeToken = (t: TokenKind): t is NodeTokenKind => t in NODE_TOKENS;
/** The token a valid request to a route of each kind carries. */
const BASE_TOKEN: Record<Access, TokenKind> = { open: 'none', job: 'a', brain: 'a', operator: 'operator' };
const tokenKind = fc.constantFrom<TokenKind>('a', 'a', 'a', 'b', 'a0', 'a0', 'a1', 'b0', 'operator', 'digest', 'digestHex', 'empty', 'none');
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
/** How the token is put in the header: right, or garbled. */
const authForm = fc.oneof(
  { arbitrary: fc.constant((t: string) => `Bearer ${t}`), weight: 8 },
  fc.constantFrom(
    (t: string) => `bearer ${t}`,
    (t: string) => `Bearer  ${t}`,
    (t: string) => `Basic ${Buffer.from(`u:${t}`).toString('base64')}`,
    (t: string) => t,
    () => 'Bearer',
    () => `Bearer ${'x'.repeat(10_000)}`,
  ),
  printable.map((junk) => () => junk),
);
const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 6 },
  fc.constantFrom(undefined, 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', '', '*/*'),
);
/** Now and then a content-length that lies about the body. */
const contentLength = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 8 },
  fc.constantFrom<(n: number) => string>(() => '0', () => '-1', () => 'abc', () => '99999999', (n) => String(n + 10), (n) => String(Math.max(0, n - 1))),
);

/** Other spellings of node 1 and node 0: a node token's scope must hold however a number is written. */
const numberSpellings = ['1', '1.0', '+1', '1e0', ' 1', '0x1', '0.0', '-0', '0e5'];
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, 0, 1, -1, 1.5, 1e300, -1e300, '', '..', '../../etc/passwd', 'x'.repeat(5000), [], {}),
  fc.constantFrom(...numberSpellings),
  fc.integer(),
  fc.string({ maxLength: 20 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const nested = (depth: number, open: string, close: string) => open.repeat(depth) + '1' + close.repeat(depth);
/** A body: the valid one mutated (a field junk, dropped or added), or junk, deep, huge or not JSON. */
function bodyFor(base: Record<string, unknown> | undefined): fc.Arbitrary<string | undefined> {
  const keys = Object.keys(base ?? {});
  const mutated: fc.Arbitrary<unknown>[] = base
    ? [
        fc.constant(base),
        fc.tuple(fc.constantFrom(...keys), junk).map(([k, v]) => ({ ...base, [k]: v })),
        fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k))),
        fc.tuple(fc.constantFrom('extra', '__proto__', 'constructor', 'x'.repeat(300)), junk).map(([k, v]) => ({ ...base, [k]: v })),
      ]
    : [];
  // A field 5,000 levels deep: written as text, since JSON.stringify itself overflows the stack there.
  const deepField = base ? [fc.constantFrom(...keys).map((k) => JSON.stringify({ ...base, [k]: 0 }).replace(`${JSON.stringify(k)}:0`, `${JSON.stringify(k)}:${nested(5000, '{"a":', '}')}`))] : [];
  return fc.oneof(
    { arbitrary: fc.oneof(fc.oneof(...mutated, junk).map((v) => JSON.stringify(v)), ...deepField), weight: base ? 8 : 2 },
    fc.constantFrom(
      undefined,
      '',
      '{',
      '{"a":1}{"b":2}',
      "{'node':0}",
      'nul',
      'NaN',
      '\u0000',
      '{"__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      nested(100_000, '[', ']').slice(0, BODY_LIMIT - 1),
      nested(20_000, '[', ']'),
      nested(5_000, '{"a":', '}'),
      JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT) }),
    ),
    fc.string({ unit: 'binary', maxLength: 50 }),
  );
}
/** A query string: the valid one with a value junk, a key dropped or added, or arbitrary junk. */
function queryFor(base: Record<string, string> | undefined): fc.Arbitrary<string> {
  const entries = Object.entries(base ?? {});
  const value = fc.oneof(fc.constantFrom('', '-1', '1.5', 'abc', '1e999', '0x10', '9'.repeat(40), '%ZZ', 'a%00'), fc.constantFrom(...numberSpellings).map(encodeURIComponent), printable.map(encodeURIComponent));
  const render = (pairs: [string, string][]) => pairs.map(([k, v]) => `${k}=${v}`).join('&');
  return fc.oneof(
    { arbitrary: fc.constant(render(entries)), weight: 4 },
    ...(entries.length
      ? [
          fc.tuple(fc.nat(entries.length - 1), value).map(([i, v]) => render(entries.map(([k, old], j) => [k, i === j ? v : old]))),
          fc.nat(entries.length - 1).map((i) => render(entries.filter((_, j) => j !== i))),
          fc.nat(entries.length - 1).map((i) => render([...entries, entries[i]!])),
        ]
      : []),
    fc.tuple(fc.constantFrom('extra', '__proto__', 'label', 'job'), value).map(([k, v]) => render([...entries, [k, v]])),
    printable.map(encodeURIComponent),
  );
}

// ---- the suite ---------------------------------------------------------------------------------

interface FuzzRequest {
  job: string;
  params: string[];
  token: TokenKind;
  auth: (token: string) => string;
  method: string;
  query: string;
  body: string | undefined;
  contentType: string | undefined;
  contentLength: ((bytes: number) => string) | undefined;
}

interface App {
  app: FastifyInstance;
  routes: Set<string>;
}

/** Builds an app and lists its routes (`METHOD /url`; a GET's implicit HEAD left out). */
async function listed(build: (onRoute: (r: { method: string | string[]; url: string }) => void) => Promise<FastifyInstance>): Promise<App> {
  const all: string[] = [];
  const app = await build((r) => all.push(...[r.method].flat().map((m) => `${m} ${r.url}`)));
  await app.ready();
  const routes = new Set(all.filter((r) => !(r.startsWith('HEAD ') && all.includes(`GET ${r.slice(5)}`))));
  return { app, routes };
}

function spec(name: string) {
  const parsed = parseJobSpec({
    metadata: { name, user: 'ada', group: 'vision', labels: { team: 'cv' } },
    spec: {
      nodes: { min: 1, max: 2, initial: 1 },
      entrypoint: { command: 'python3', args: ['train.py'] },
      dataset: { size: 100, shardSize: 10 },
      checkpoint: { dir: `/nonexistent/rover-fuzz/${name}` },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

/** Routes the standalone Brain serves too. */
const onBrain = (route: string) => route.startsWith('GET /healthz') || route.includes(' /brain/');

interface Seeded {
  api: App;
  brain: App;
  /** Error-level log lines of the current request (a 5xx logs one). */
  failures: string[];
  close(): Promise<void>;
}

/** Jobs a and b with their tokens, node 0 of job a in a closed round, and both apps on `store`. */
async function seed(store: Store): Promise<Seeded> {
  for (const [id, token] of Object.entries(TOKENS)) {
    await store.jobs.create({ id, workflowId: `job-${id}`, user: 'ada', group: 'vision', backend: 'local', spec: spec(id), phase: 'RUNNING', token });
  }
  // So that valid agent and trainer bodies reach the agents' service and the ledger.
  await store.nodes.upsertLaunch({ jobId: 'a', nodeId: 0, incarnation: 0, backend: 'local', status: 'running' });
  await store.rendezvous.openRound({ jobId: 'a', round: 1, minNodes: 1, maxNodes: 2 });
  await store.rendezvous.join({ jobId: 'a', round: 1, nodeId: 0, incarnation: 0, host: 'node-0' });
  await store.rendezvous.closeRound({ jobId: 'a', round: 1, ranks: [{ nodeId: 0, rank: 0 }], masterAddr: 'node-0', masterPort: 29500 });
  // inject() on an in-memory store answers through promises alone, so a property's requests run
  // without the event loop reaching its timers: a loop-lag limit would shed them (api/overload.ts).
  // Shedding has its own tests; these are about what each route accepts.
  const config = loadConfig({ ROVER_OPERATOR_TOKEN: OPERATOR, ROVER_API_BODY_LIMIT: String(BODY_LIMIT), ROVER_API_MAX_LAG_MS: '600000' });
  const failures: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void failures.push(line) });
  const api = await listed((onRoute) => buildApi({ config, store, logger, onRoute }));
  const brain = await listed((onRoute) => buildBrainApi({ config, store, logger, onRoute }));
  return {
    api,
    brain,
    failures,
    close: async () => {
      await api.app.close();
      await brain.app.close();
    },
  };
}

/**
 * RUNS generated requests to `route` of `target`; throws on a 5xx, a 4xx without a reason, a 2xx
 * to the wrong caller, or a generator that never reached both a 2xx and a refusal.
 */
async function fuzzRoute(target: App, route: string, c: RouteCase, failures: string[]): Promise<void> {
  const [method, template] = route.split(' ') as ['GET' | 'POST', string];
  const paramNames = [...template.matchAll(/:(\w+)/g)].map((m) => m[1]!).filter((n) => n !== 'job');
  const values = (name: string) => c.params?.[name] ?? expect.fail(`ROUTES['${route}'] needs params.${name}: values to try, a valid one first`);
  const param = (name: string) => fc.oneof({ arbitrary: fc.constantFrom(...values(name)), weight: 4 }, unicode, fc.constantFrom('', '..'));
  // A valid request, and for each of its parts generated values; each request replaces one
  // or two parts (mostly the body or query), so the rest stays valid and the change reaches
  // the code behind the checks before it.
  const valid: FuzzRequest = {
    job: 'a',
    params: paramNames.map((n) => values(n)[0]!),
    token: BASE_TOKEN[c.access],
    auth: (t) => `Bearer ${t}`,
    method,
    query: Object.entries(c.query ?? {}).map(([k, v]) => `${k}=${v}`).join('&'),
    body: c.body && JSON.stringify(c.body),
    contentType: 'application/json',
    contentLength: undefined,
  };
  const parts = fc.record({
    job: jobId,
    params: fc.tuple(...paramNames.map(param)),
    token: tokenKind,
    auth: authForm,
    method: fc.constantFrom('HEAD', 'PUT', 'DELETE', method === 'GET' ? 'POST' : 'GET'),
    query: queryFor(c.query),
    body: bodyFor(c.body),
    contentType,
    contentLength,
  });
  const mutable = (Object.keys(valid) as (keyof FuzzRequest)[]).filter((k) => k !== 'params' || paramNames.length > 0);
  const weighted = [...mutable, ...(c.body ? ['body', 'body', 'body'] : []), ...(c.query ? ['query', 'query'] : [])] as (keyof FuzzRequest)[];
  const request = fc
    .tuple(parts, fc.uniqueArray(fc.constantFrom(...weighted), { minLength: 0, maxLength: 2 }))
    .map(([generated, changed]) => ({ ...valid, ...Object.fromEntries(changed.map((k) => [k, generated[k]])) }) as FuzzRequest);
  const tally = { ok: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      let url = template.replace(':job', r.job);
      paramNames.forEach((name, i) => (url = url.replace(`:${name}`, r.params[i]!)));
      if (r.query) url += `?${r.query}`;
      const token = isNodeToken(r.token)
        ? nodeToken(OPERATOR, tokenDigest(TOKENS[NODE_TOKENS[r.token].job]!), NODE_TOKENS[r.token])
        : { a: TOKENS.a!, b: TOKENS.b!, operator: OPERATOR, digest: tokenDigest(TOKENS.a!), digestHex: digestHex(tokenDigest(TOKENS.a!)), empty: '', none: undefined }[r.token];
      const headers: Record<string, string> = {};
      if (token !== undefined) headers.authorization = r.auth(token);
      if (r.contentType !== undefined) headers['content-type'] = r.contentType;
      const sendsBody = r.method !== 'GET' && r.method !== 'HEAD' && r.body !== undefined;
      if (sendsBody && r.contentLength) headers['content-length'] = r.contentLength(Buffer.byteLength(r.body!));
      const options: InjectOptions = { method: r.method as InjectOptions['method'], url, headers, ...(sendsBody && { payload: r.body }) };
      failures.length = 0;
      const res = await target.app.inject(options);
      if (res.statusCode < 300) tally.ok++;
      else tally.refused++;
      const where = `${r.method} ${url.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
      if (res.statusCode >= 500) throw new Error(`5xx: ${where}\n${failures.join('\n').slice(0, 2000)}`);
      if (res.statusCode >= 400 && r.method !== 'HEAD') {
        const reply = JSON.parse(res.body) as { error?: unknown; message?: unknown };
        if (typeof reply.error !== 'string' || typeof reply.message !== 'string' || !/\S/.test(reply.message)) throw new Error(`4xx without a reason: ${where}`);
      }
      if (res.statusCode < 300 && !allowed(c.access, r, token, options)) throw new Error(`2xx to a caller without the right token: ${where}`);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  expect(tally.ok, `${route}: requests answered 2xx`).toBeGreaterThan(0);
  expect(tally.refused, `${route}: requests refused`).toBeGreaterThan(0);
}

// SQLite in CI: the same requests against MySQL cost about five times the CPU (measured: ~16 s
// against ~3 s), and the dialects share every route and check above the store. FUZZ_STORE_URL=<an
// empty MySQL database's URL> runs them there.
describe('fuzzing every HTTP route', () => {
  let store: Store;
  let apps: Seeded;
  beforeAll(async () => {
    store = await openStore(process.env.FUZZ_STORE_URL ?? 'sqlite::memory:');
    apps = await seed(store);
  });
  afterAll(async () => {
    await apps?.close();
    await store?.close();
  });

  it('has a row in the fuzz table for every route of the API and of the standalone Brain, and no stale one', () => {
    const rows = Object.keys(ROUTES);
    expect([...apps.api.routes].filter((r) => !(r in ROUTES)), 'API routes without a row in ROUTES').toEqual([]);
    expect(rows.filter((r) => !apps.api.routes.has(r)), 'rows in ROUTES for no API route').toEqual([]);
    expect([...apps.brain.routes].sort(), 'the standalone Brain serves the Brain routes and health').toEqual(rows.filter(onBrain).sort());
  });

  // One test per route and app, so a slow machine stays within each test's timeout.
  const cases = Object.entries(ROUTES).flatMap(([route, c]) => [
    { app: 'API' as const, route, c },
    ...(onBrain(route) ? [{ app: 'Brain' as const, route, c }] : []),
  ]);
  it.each(cases)('$app $route: 2xx to the right token only, else a 4xx with a reason', async ({ app, route, c }) => {
    const target = app === 'API' ? apps.api : apps.brain;
    await fuzzRoute(target, route, c, apps.failures).catch((err: Error) => {
      // fast-check's report starts with the seed and the smallest failing request; a deep JSON
      // body can make it huge.
      const cause = err.cause instanceof Error ? err.cause.message : '';
      throw new Error(`${err.message.slice(0, 4000)}\n${cause.slice(0, 4000)}`);
    });
    expect((await target.app.inject({ url: '/healthz' })).statusCode, 'still serving').toBe(200);
  });
});

/**
 * Whether a 2xx is acceptable: an open route, or the right token for the job the request names —
 * the job's token, or a node token of the job that, where the request names a node or an
 * incarnation (body or query, read as a number the way the routes coerce), is that node
 * incarnation's, and on the Brain only for a read (GET).
 */
function allowed(access: Access, r: FuzzRequest, token: string | undefined, options: InjectOptions): boolean {
  if (access === 'open') return true;
  // The scheme name is case-insensitive (common/tokens.ts bearerOf).
  const sentRight = token !== undefined && /^bearer (.+)$/i.exec((options.headers as Record<string, string>).authorization ?? '')?.[1] === token;
  if (!sentRight) return false;
  const query = new URL(options.url as string, 'http://x').searchParams;
  let body: Record<string, unknown> | undefined;
  try {
    const parsed = JSON.parse(String(options.payload)) as unknown;
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
  } catch {
    body = undefined; // not JSON: names nothing
  }
  const tokenJob = isNodeToken(r.token) ? NODE_TOKENS[r.token].job : r.token;
  if (isNodeToken(r.token)) {
    const scope = NODE_TOKENS[r.token];
    for (const field of ['node', 'incarnation'] as const) {
      const named = [body?.[field], query.get(field) ?? undefined].filter((v) => v !== undefined);
      if (named.some((v) => Number(v) !== scope[field])) return false;
    }
  }
  if (access === 'job') return tokenJob === r.job;
  if (r.token === 'operator') return true;
  if (access === 'operator') return false;
  if (isNodeToken(r.token) && r.method !== 'GET') return false;
  // The Brain reads the job from the body of a POST and from the query of a GET.
  const named = r.method === 'POST' ? body?.job : query.get('job');
  return named === tokenJob;
}
